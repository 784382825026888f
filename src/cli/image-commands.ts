import { Command, Option } from 'commander';
import { act, table } from './tenant-commands.js';

const DEFAULT_HOST = 'unix:///var/run/berth.sock';

interface PublishedView {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  PublishedAt: string;
}

/** `berth image ...`: the operator's base images that every tenant may use (operator only). */
export function imageCommand(): Command {
  const image = new Command('image').description("publish the operator's images as base images every tenant can use (operator only, over the local socket)");
  const host = (): Option => new Option('-H, --host <address>', "Berth's local socket").default(DEFAULT_HOST);

  image
    .command('publish <image>')
    .description("make one of the operator's images (reference or id) readable by every tenant: run, inspect, build FROM, list")
    .addOption(host())
    .action(async (ref: string, options: { host: string }) => {
      await act(options.host, async (client) => {
        const result = await client.call<{ Id: string; AlreadyPublished: boolean }>('POST', '/berth/v1/images/publish', { Image: ref });
        return `${result.AlreadyPublished ? 'already published' : 'published'}: ${ref} (${result.Id})`;
      });
    });

  image
    .command('unpublish <image>')
    .description('withdraw a published image: tenants can no longer see it or create containers from it; their running containers keep running')
    .addOption(host())
    .action(async (ref: string, options: { host: string }) => {
      await act(options.host, async (client) => {
        const result = await client.call<{ Id: string }>('POST', '/berth/v1/images/unpublish', { Image: ref });
        return `unpublished: ${ref} (${result.Id})`;
      });
    });

  image
    .command('ls')
    .description('list the published images')
    .addOption(host())
    .option('-q, --quiet', 'ids only')
    .action(async (options: { host: string; quiet?: boolean }) => {
      await act(options.host, async (client) => {
        const list = await client.call<PublishedView[]>('GET', '/berth/v1/images');
        if (options.quiet) return list.map((i) => i.Id).join('\n');
        const rows = [['IMAGE ID', 'REFERENCES', 'PUBLISHED']];
        for (const i of list) rows.push([i.Id.replace(/^sha256:/, '').slice(0, 12), [...i.RepoTags, ...i.RepoDigests].join(', ') || '<none>', i.PublishedAt]);
        return table(rows);
      });
    });
  return image;
}
