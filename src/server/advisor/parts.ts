/**
 * The one place the service reaches the Advisor's pure parts (built in their own folders by
 * the feeds and inventory work): inventory of a filesystem, compliance checks, feed importers
 * and builder, and matching. Everything else in the service goes through these names, so a
 * change of an entry point is one edit here.
 */
export { takeInventory, readRuntimeState } from '../../agent/inventory/index.js';
export { runComplianceChecks, COMPLIANCE_CHECKS } from './compliance/index.js';
export { importDebianTracker, importOsv, buildDebianArchiveFeed } from './feeds/index.js';
export { FeedIndex, matchInventory } from './matching/index.js';
