/**
 * RequestContext is passed first to every service call. It names the tenant on whose
 * behalf the call runs: the store scopes every read and write by it, so an unscoped query
 * cannot be written. Until tenancy lands every caller of the local socket is the operator
 * tenant "default".
 */
export interface RequestContext {
  readonly tenant: string;
  readonly requestId: string;
}

export const OPERATOR_TENANT = 'default';

export function operatorContext(requestId = 'internal'): RequestContext {
  return { tenant: OPERATOR_TENANT, requestId };
}
