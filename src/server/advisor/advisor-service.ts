import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RequestContext } from '../../common/context.js';
import { forbidden, invalidArgument, isKind, notFound, unavailable } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { EventPublisher } from '../events/types.js';
import type { ImageRecord } from '../images/image-record.js';
import type { ContainerRecord } from '../containers/model.js';
import { AdvisorDb, type ContainerInventoryRow, type FeedSummary, type ImageInventoryRow } from './advisor-db.js';
import { FeedVersions, archiveCacheDir, summaryOf, type ArchiveFeedInput, type CurrentFeed, type FeedSource } from './feed-versions.js';
import { cleanImageRootfsScratch, withImageRootfs } from './image-rootfs.js';
import type { ComplianceFinding, ComplianceSubject, Inventory, RuntimeState, Severity, VulnerabilityFinding } from './model.js';
import { matchInventory, readRuntimeState, runComplianceChecks, takeInventory, type FeedIndex } from './parts.js';
import { activeFindings, blockingFindings, buildReport, findingKey, policyRefusal, refOfCompliance, type FindingRef, type Report } from './report.js';
import { buildSbom, type SbomFormat } from './sbom.js';
import { AdvisorRecords, type Alert, type Exemption } from './tenant-records.js';

/** What the advisor needs of images: a tenant's view of one, and the layers of any. */
export interface AdvisorImages {
  inspect(ctx: RequestContext, ref: string): Promise<ImageRecord>;
  layerPathsOf(imageId: string): Promise<string[]>;
  storedConfig(imageId: string): Promise<ImageRecord['config']>;
  /** Every tenant's image ids (start-up catch-up only). */
  allImageIds(): Promise<string[]>;
}

/** What the advisor needs of containers. */
export interface AdvisorContainers {
  lookup(ctx: RequestContext, ref: string): Promise<ContainerRecord>;
  /** Every tenant's containers (the periodic scan and feed re-match only). */
  listAll(): Promise<{ tenant: string; record: ContainerRecord }[]>;
  /** The container's writable layer (drift), and its merged root for a container not running. */
  upperDir(id: string): string;
  mountRootfs(id: string): Promise<string>;
}

export interface AdvisorServiceOptions {
  db: AdvisorDb;
  records: AdvisorRecords;
  images: AdvisorImages;
  containers: AdvisorContainers;
  events: EventPublisher;
  dataRoot: string;
  logger: Logger;
  /** How long `docker create` waits for an image's inventory when policy needs it. */
  admitTimeoutMs?: number;
}

/** Counters that show what the advisor did: the proof that a new feed reads no filesystem. */
export interface AdvisorStats {
  /** Filesystem inventories taken (images and containers). */
  inventoryReads: number;
  /** Inventories matched against a feed (reports, re-matches, policy checks), cached or not. */
  matches: number;
  /** Re-matches of stored inventories after the last new feed, and how long they took. */
  lastRematch: { feedVersion: number; inventories: number; ms: number } | null;
  /** The last image inventory: layers mounted, packages read, compliance checked, stored. */
  lastImageInventory: { imageId: string; packages: number; ms: number; packagesMs: number; complianceMs: number } | null;
}

const FINDINGS_CACHE_LIMIT = 2000;
/** Compliance checks of a container's create-time settings (privileges, limits, mounts...). */
const CREATE_SETTINGS_CHECK_PREFIX = 'BERTH-RUNTIME-';

/**
 * The Vulnerability Advisor as a Berth service (issue 8).
 *
 * Terms:
 * - inventory: what is installed in an image (by image id, shared by every tenant holding it)
 *   or a live container (by container id), taken from its files once and stored;
 * - feed: a versioned set of advisories; the newest version is the one findings use;
 * - findings: an inventory matched against a feed version, computed on read and cached per
 *   (inventory, feed version) in memory. A new feed therefore re-matches stored inventories
 *   without reading any filesystem again.
 *
 * Lifecycle: images are inventoried off the request path after they are recorded (a queue
 * fed by the image service, caught up at start-up for anything a crash interrupted);
 * containers on demand (`scan`) and by the periodic scan of running containers. A scan or a
 * new feed that gives a running container findings it did not have raises an alert and a
 * Docker event (`advisor:vulnerable` / `advisor:noncompliant`) in the owning tenant's stream.
 *
 * Tenancy: every tenant-facing call takes the RequestContext and reaches images and
 * containers only through the tenant-scoped lookups, so another tenant's object is NotFound.
 */
export class AdvisorService {
  private readonly db: AdvisorDb;
  private readonly records: AdvisorRecords;
  private readonly scratch: string;
  private readonly feeds: FeedVersions;
  private readonly pending = new Map<string, Promise<ImageInventoryRow>>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly findingsCache = new Map<string, VulnerabilityFinding[]>();
  private scanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private closed = false;
  readonly stats: AdvisorStats = { inventoryReads: 0, matches: 0, lastRematch: null, lastImageInventory: null };

  constructor(private readonly opts: AdvisorServiceOptions) {
    this.db = opts.db;
    this.records = opts.records;
    this.scratch = join(opts.dataRoot, 'advisor', 'mnt');
    this.feeds = new FeedVersions(opts.db, archiveCacheDir(opts.dataRoot));
  }

  // ---- images ---------------------------------------------------------------------------

  /**
   * Queues an image for inventory (the image service calls this when it records an image).
   * Never throws: a failure is logged, and the image is inventoried again on demand.
   */
  imageAdded(imageId: string): void {
    if (this.closed || this.db.imageInventory(imageId)) return;
    this.inventoryImage(imageId).catch((err: unknown) => this.opts.logger.warn({ err, imageId }, 'image inventory failed'));
  }

  /**
   * Start-up: removes mounts a killed Berth left, and inventories every image that has none
   * (a crash may have interrupted the queue).
   */
  async catchUp(): Promise<void> {
    await cleanImageRootfsScratch(this.scratch);
    const done = this.db.imageIdsWithInventory();
    for (const id of new Set(await this.opts.images.allImageIds())) if (!done.has(id)) this.imageAdded(id);
  }

  /** The image's stored inventory, taking it now (one at a time, once per image id) when missing. */
  private inventoryImage(imageId: string): Promise<ImageInventoryRow> {
    const stored = this.db.imageInventory(imageId);
    if (stored) return Promise.resolve(stored);
    let pending = this.pending.get(imageId);
    if (pending === undefined) {
      const run = async (): Promise<ImageInventoryRow> => {
        const again = this.db.imageInventory(imageId);
        if (again) return again;
        const started = performance.now();
        const lowers = await this.opts.images.layerPathsOf(imageId);
        const config = await this.imageConfig(imageId);
        await mkdir(this.scratch, { recursive: true });
        let packagesMs = 0;
        let complianceMs = 0;
        const row = await withImageRootfs(this.scratch, lowers, async (rootfs) => {
          const read = performance.now();
          const inventory = await this.readInventory(rootfs);
          const checked = performance.now();
          const compliance = await runComplianceChecks({ rootfs, config, inventory });
          packagesMs = checked - read;
          complianceMs = performance.now() - checked;
          return { imageId, inventory, compliance };
        });
        this.db.putImageInventory(row);
        this.stats.lastImageInventory = {
          imageId,
          packages: row.inventory.packages.length,
          ms: Math.round(performance.now() - started),
          packagesMs: Math.round(packagesMs),
          complianceMs: Math.round(complianceMs),
        };
        return row;
      };
      pending = this.queue.then(run, run);
      this.queue = pending.catch(() => undefined);
      this.pending.set(imageId, pending);
      void pending.finally(() => this.pending.delete(imageId)).catch(() => undefined);
    }
    return pending;
  }

  /** The config parts compliance reads, from the image config blob (content is shared: no tenant needed). */
  private async imageConfig(imageId: string): Promise<ComplianceSubject['config']> {
    const c = (await this.opts.images.storedConfig(imageId)).config ?? {};
    return { ...(c.User !== undefined ? { User: c.User } : {}), ...(c.Env ? { Env: c.Env } : {}), Healthcheck: c.Healthcheck ?? null };
  }

  private async readInventory(rootfs: string): Promise<Inventory> {
    this.stats.inventoryReads++;
    return takeInventory(rootfs);
  }

  async imageReport(ctx: RequestContext, ref: string): Promise<Report> {
    const image = await this.opts.images.inspect(ctx, ref);
    const row = await this.inventoryImage(image.id);
    return this.report(ctx, { kind: 'image', id: image.id, name: image.repoTags[0] ?? ref, imageId: image.id }, row.inventory, row.compliance, `image:${image.id}`);
  }

  async imageSbom(ctx: RequestContext, ref: string, format: SbomFormat): Promise<Record<string, unknown>> {
    const image = await this.opts.images.inspect(ctx, ref);
    const row = await this.inventoryImage(image.id);
    return buildSbom(format, { name: image.repoTags[0] ?? ref, imageId: image.id }, row.inventory);
  }

  // ---- containers -----------------------------------------------------------------------

  /**
   * Takes a container's inventory now from its root filesystem (its overlay: what was
   * installed after start counts), with runtime state while it runs, and compliance; stores
   * it and raises an alert for findings it did not have before.
   */
  async scanContainer(ctx: RequestContext, ref: string, cause = 'scan'): Promise<Report & { runtime: RuntimeState | null }> {
    const record = await this.opts.containers.lookup(ctx, ref);
    const running = record.state.Running && record.state.Pid > 0;
    // The container's overlay as mounted in Berth's own namespace: the same filesystem the
    // container sees at / (so what was installed after start counts). /proc/<pid>/root is no
    // good from here: after pivot_root it resolves to "/" of the host for a path-based reader.
    const rootfs = await this.opts.containers.mountRootfs(record.id);
    const inventory = await this.readInventory(rootfs);
    let runtime: RuntimeState | null = null;
    if (running) {
      runtime = await readRuntimeState({ pid: record.state.Pid, upperDir: this.opts.containers.upperDir(record.id), rootfs });
    }
    const compliance = await runComplianceChecks({
      rootfs,
      config: { User: record.config.User, Env: record.config.Env, Healthcheck: record.config.Healthcheck ?? null },
      hostConfig: record.hostConfig as unknown as Record<string, unknown>,
      ...(runtime ? { runtime } : {}),
      inventory,
    });
    const previous = this.db.containerInventory(record.id);
    // First scan: what the image had and the settings chosen at create (reported, but not
    // news) are the baseline; what drift added since start is what alerts.
    const baseline = previous?.knownFindings ?? [
      ...(await this.imageBaseline(ctx, record)),
      ...compliance.filter((c) => c.checkId.startsWith(CREATE_SETTINGS_CHECK_PREFIX)).map((c) => findingKey(refOfCompliance(c))),
    ];
    const row: ContainerInventoryRow = { containerId: record.id, tenant: ctx.tenant, imageId: record.imageId, inventory, runtime, compliance, knownFindings: baseline };
    this.db.putContainerInventory(row);
    const report = await this.containerReportOf(ctx, record, row);
    await this.alertOnNew(ctx, record, report, baseline, cause);
    return { ...report, runtime };
  }

  /** The report of a container's last scan; scanned now when it never was. */
  async containerReport(ctx: RequestContext, ref: string): Promise<Report & { runtime: RuntimeState | null }> {
    const record = await this.opts.containers.lookup(ctx, ref);
    const row = this.db.containerInventory(record.id);
    if (!row) return this.scanContainer(ctx, record.id);
    return { ...(await this.containerReportOf(ctx, record, row)), runtime: row.runtime };
  }

  private containerReportOf(ctx: RequestContext, record: ContainerRecord, row: ContainerInventoryRow): Promise<Report> {
    return this.report(
      ctx,
      { kind: 'container', id: record.id, name: record.name, imageId: record.imageId },
      row.inventory,
      row.compliance,
      `container:${record.id}:${row.inventory.takenAt}`,
    );
  }

  /** What a container starts with: its image's findings (so only what drift or a feed adds alerts). */
  private async imageBaseline(ctx: RequestContext, record: ContainerRecord): Promise<string[]> {
    try {
      const row = await this.inventoryImage(record.imageId);
      const report = await this.report(ctx, { kind: 'image', id: record.imageId, name: record.image, imageId: record.imageId }, row.inventory, row.compliance, `image:${record.imageId}`);
      return activeFindings(report).map(findingKey);
    } catch (err) {
      this.opts.logger.warn({ err, container: record.id }, 'no image inventory for a container baseline');
      return [];
    }
  }

  private async alertOnNew(ctx: RequestContext, record: ContainerRecord, report: Report, known: readonly string[], cause: string): Promise<Alert[]> {
    const findings = activeFindings(report);
    this.db.setKnownFindings(record.id, findings.map(findingKey));
    if (!record.state.Running) return [];
    const knownSet = new Set(known);
    const fresh = findings.filter((f) => !knownSet.has(findingKey(f)));
    const vulnerable = fresh.filter((f) => f.package !== undefined);
    const noncompliant = fresh.filter((f) => f.package === undefined);
    const alerts: Alert[] = [];
    for (const [action, list] of [
      ['advisor:vulnerable', vulnerable],
      ['advisor:noncompliant', noncompliant],
    ] as const) {
      if (list.length === 0) continue;
      const alert = await this.records.addAlert(ctx, {
        containerId: record.id,
        containerName: record.name,
        imageId: record.imageId,
        action,
        cause,
        findings: list.map((f) => ({ id: f.id, ...(f.package ? { package: f.package } : {}), severity: f.severity })),
      });
      alerts.push(alert);
      this.opts.events.publish(ctx, {
        Type: 'container',
        Action: action,
        Actor: {
          ID: record.id,
          Attributes: {
            name: record.name,
            image: record.image,
            cause,
            count: String(list.length),
            severity: worst(list),
            findings: [...new Set(list.map((f) => f.id))].slice(0, 20).join(','),
            alert: alert.id,
          },
        },
      });
    }
    return alerts;
  }

  // ---- feeds ----------------------------------------------------------------------------

  listFeeds(): FeedSummary[] {
    return this.feeds.list();
  }

  /** Imports tracker JSON and OSV records as a new feed version (merged onto the last, unless `replace`). */
  async importFeed(sources: FeedSource[], replace = false): Promise<FeedSummary> {
    return this.feedAdded(this.feeds.importSources(sources, replace));
  }

  /** Builds a feed from a Debian security archive (as apt reaches it) and stores it as a new version. */
  async buildFeed(input: ArchiveFeedInput): Promise<FeedSummary> {
    return this.feedAdded(await this.feeds.buildFromArchive(input));
  }

  private async feedAdded({ added, previous }: { added: CurrentFeed; previous: CurrentFeed | null }): Promise<FeedSummary> {
    this.findingsCache.clear();
    await this.rematchRunning(previous?.index, added.snapshot.version);
    return summaryOf(added);
  }

  /**
   * A new feed: every stored inventory of a running container (its last scan, or its image's
   * inventory when never scanned) is matched again — from the database, no filesystem read —
   * and what is new raises alerts. Containers no longer there lose their rows.
   */
  private async rematchRunning(previousIndex: FeedIndex | undefined, version: number): Promise<void> {
    const started = performance.now();
    let inventories = 0;
    const live = await this.opts.containers.listAll();
    this.forgetRemovedContainers(live);
    for (const { tenant, record } of live) {
      if (!record.state.Running) continue;
      const ctx: RequestContext = { tenant, requestId: `advisor-feed-${version}` };
      try {
        const row = this.db.containerInventory(record.id);
        if (row) {
          inventories++;
          const report = await this.containerReportOf(ctx, record, row);
          await this.alertOnNew(ctx, record, report, row.knownFindings, `feed:${version}`);
          continue;
        }
        const image = this.db.imageInventory(record.imageId);
        if (!image) continue;
        inventories++;
        const oldFindings = previousIndex ? matchInventory(image.inventory, previousIndex) : [];
        const exemptions = await this.records.exemptions(ctx);
        const subject = { kind: 'container' as const, id: record.id, name: record.name, imageId: record.imageId };
        const before = buildReport({ subject, feedVersion: null, inventoryTakenAt: image.inventory.takenAt, os: null, packages: 0, vulnerabilities: oldFindings, compliance: image.compliance, exemptions });
        const after = await this.report(ctx, subject, image.inventory, image.compliance, `image:${record.imageId}`);
        // The container has no row of its own yet: record the image's inventory as its baseline.
        this.db.putContainerInventory({ containerId: record.id, tenant, imageId: record.imageId, inventory: image.inventory, runtime: null, compliance: image.compliance, knownFindings: [] });
        await this.alertOnNew(ctx, record, after, activeFindings(before).map(findingKey), `feed:${version}`);
      } catch (err) {
        this.opts.logger.warn({ err, container: record.id }, 'feed re-match of a container failed');
      }
    }
    this.stats.lastRematch = { feedVersion: version, inventories, ms: Math.round(performance.now() - started) };
  }

  // ---- reports --------------------------------------------------------------------------

  private async report(ctx: RequestContext, subject: Report['subject'], inventory: Inventory, compliance: ComplianceFinding[], cacheKey: string): Promise<Report> {
    const feed = this.feeds.now();
    const vulnerabilities = feed ? this.match(inventory, feed, cacheKey) : [];
    return buildReport({
      subject,
      feedVersion: feed?.snapshot.version ?? null,
      inventoryTakenAt: inventory.takenAt,
      os: inventory.os ? (inventory.os.prettyName ?? `${inventory.os.id} ${inventory.os.versionId ?? inventory.os.codename ?? ''}`.trim()) : null,
      packages: inventory.packages.length,
      vulnerabilities,
      compliance,
      exemptions: await this.records.exemptions(ctx),
    });
  }

  private match(inventory: Inventory, feed: CurrentFeed, cacheKey: string): VulnerabilityFinding[] {
    this.stats.matches++;
    const key = `${cacheKey}@${feed.snapshot.version}`;
    let findings = this.findingsCache.get(key);
    if (findings === undefined) {
      findings = matchInventory(inventory, feed.index);
      if (this.findingsCache.size >= FINDINGS_CACHE_LIMIT) this.findingsCache.delete(this.findingsCache.keys().next().value!);
      this.findingsCache.set(key, findings);
    }
    return findings;
  }

  // ---- policy, exemptions, alerts ---------------------------------------------------------

  /**
   * Admission of `docker create`: refuses (Forbidden) an image with non-exempt findings at or
   * above the tenant's block severity. An image not inventoried yet is inventoried now, within
   * a time limit; past it the create fails (Unavailable) rather than let an unknown image in.
   */
  async admitCreate(ctx: RequestContext, imageRef: string): Promise<void> {
    const policy = await this.records.policy(ctx);
    if (policy.blockSeverity === null) return;
    let image: ImageRecord;
    try {
      image = await this.opts.images.inspect(ctx, imageRef);
    } catch (err) {
      if (isKind(err, 'NotFound')) return; // create answers "No such image" itself (and the CLI pulls).
      throw err;
    }
    const timeoutMs = this.opts.admitTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable(`image ${imageRef} is still being inventoried for the vulnerability policy; try again shortly`)), timeoutMs);
    });
    let row: ImageInventoryRow;
    try {
      row = await Promise.race([this.inventoryImage(image.id), timeout]);
    } finally {
      clearTimeout(timer);
    }
    const report = await this.report(ctx, { kind: 'image', id: image.id, name: imageRef, imageId: image.id }, row.inventory, row.compliance, `image:${image.id}`);
    const blocking = blockingFindings(report, policy.blockSeverity);
    if (blocking.length > 0) throw forbidden(policyRefusal(imageRef, policy.blockSeverity, blocking));
  }

  policy(ctx: RequestContext): ReturnType<AdvisorRecords['policy']> {
    return this.records.policy(ctx);
  }

  setPolicy(ctx: RequestContext, blockSeverity: Severity | null): ReturnType<AdvisorRecords['setPolicy']> {
    return this.records.setPolicy(ctx, blockSeverity);
  }

  exemptions(ctx: RequestContext): Promise<Exemption[]> {
    return this.records.exemptions(ctx);
  }

  async addExemption(
    ctx: RequestContext,
    input: { image: string; findingId: string; reason: string; expiresAt: string | null; createdBy: string },
  ): Promise<Exemption> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(input.findingId)) throw invalidArgument('the finding must be an advisory id (CVE-2024-1234) or a check id');
    if (input.reason.trim() === '') throw invalidArgument('an exemption needs a reason');
    if (input.expiresAt !== null && (Number.isNaN(Date.parse(input.expiresAt)) || Date.parse(input.expiresAt) <= Date.now())) {
      throw invalidArgument('the expiry must be a time in the future (RFC 3339, or a duration like 30d)');
    }
    const imageId = input.image === '*' ? '*' : (await this.opts.images.inspect(ctx, input.image)).id;
    return this.records.addExemption(ctx, {
      imageId,
      imageRef: input.image,
      findingId: input.findingId,
      reason: input.reason.trim(),
      expiresAt: input.expiresAt === null ? null : new Date(input.expiresAt).toISOString(),
      createdBy: input.createdBy,
    });
  }

  async removeExemption(ctx: RequestContext, id: string): Promise<void> {
    try {
      await this.records.removeExemption(ctx, id);
    } catch (err) {
      if (isKind(err, 'NotFound')) throw notFound(`No such exemption: ${id}`);
      throw err;
    }
  }

  alerts(ctx: RequestContext): Promise<Alert[]> {
    return this.records.alerts(ctx);
  }

  // ---- periodic scan ----------------------------------------------------------------------

  /** Scans every running container every `intervalMs` (0: never). */
  startPeriodicScan(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.scanTimer = setInterval(() => {
      if (this.scanning) return;
      this.scanning = this.scanRunning().finally(() => (this.scanning = undefined));
    }, intervalMs);
    this.scanTimer.unref();
  }

  async scanRunning(): Promise<void> {
    const live = await this.opts.containers.listAll();
    this.forgetRemovedContainers(live);
    for (const { tenant, record } of live) {
      if (this.closed) return;
      if (!record.state.Running) continue;
      await this.scanContainer({ tenant, requestId: 'advisor-periodic' }, record.id, 'periodic-scan').catch((err: unknown) =>
        this.opts.logger.warn({ err, container: record.id }, 'periodic container scan failed'),
      );
    }
  }

  /** Container inventories outlive their containers only until the next scan or feed. */
  private forgetRemovedContainers(live: { record: ContainerRecord }[]): void {
    const liveIds = new Set(live.map((c) => c.record.id));
    for (const id of this.db.containerIds()) if (!liveIds.has(id)) this.db.deleteContainerInventory(id);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.scanTimer) clearInterval(this.scanTimer);
    await this.scanning?.catch(() => undefined);
    await this.queue.catch(() => undefined);
    this.db.close();
  }
}

function worst(list: FindingRef[]): Severity {
  const order: Severity[] = ['critical', 'high', 'medium', 'low', 'negligible', 'unknown'];
  return order.find((s) => list.some((f) => f.severity === s)) ?? 'unknown';
}
