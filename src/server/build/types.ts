import { BerthError } from '../../common/errors.js';
import type { RequestContext } from '../../common/context.js';

/** What `POST /build` asks for (query parameters, decoded). */
export interface BuildOptions {
  dockerfile: string;
  tags: string[];
  noCache: boolean;
  pull: boolean;
  quiet: boolean;
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  target?: string;
  platform?: string;
}

/** The build's output as the classic builder streams it. */
export interface BuildOutput {
  /** Text for the user (`{"stream": ...}`). */
  stream(text: string): void;
  /** The built image's id (`{"aux": {"ID": ...}}`), which `--iidfile` reads. */
  aux(id: string): void;
}

/** A failed RUN: dockerd's message, and its exit code as the error's code. */
export class StepFailed extends BerthError {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super('InvalidArgument', message);
  }
}

/** A bounded memo of values that never change for a key (oldest entries go first). */
export class Memo {
  private readonly values = new Map<string, string>();

  constructor(private readonly limit: number) {}

  async get(key: string, compute: () => Promise<string>): Promise<string> {
    const known = this.values.get(key);
    if (known !== undefined) return known;
    const value = await compute();
    this.values.set(key, value);
    if (this.values.size > this.limit) this.values.delete(this.values.keys().next().value!);
    return value;
  }
}

/** Fetches a base image from its registry (the registry work provides it). */
export type ImagePuller = (ctx: RequestContext, ref: string, platform: string | undefined) => Promise<void>;

