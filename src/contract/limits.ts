/**
 * @module contract/limits
 *
 * Bounds that the config file and the running stack's control API both
 * enforce, so that `instances: N` in the file and `tsgi-stack scale APP N`
 * refuse the same numbers.
 */

/** The most worker processes one app may ask for: beyond it, a typo (instances: 1000000) rather than a plan. */
export const MAX_INSTANCES = 256;
