/** Matching inventories against advisory feeds. */
export { FeedIndex, type IndexedAdvisory } from './feed-index.js';
export { matchInventory } from './match.js';
export { releaseOf } from './release.js';
export { remediationCommand } from './remediation.js';
export { evaluateRanges, compileRanges } from './osv-ranges.js';
