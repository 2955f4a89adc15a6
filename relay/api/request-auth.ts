// One request's credentials as both front ends see them, taken from its headers and its TLS
// session only (so auth runs in onRequest, before a byte of the body is read), and the one
// check both front ends apply: authenticate, then require the route's scope.
import { Http2ServerRequest } from 'node:http2';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { isPrincipal, type AuthFailure, type Authenticator, type Credentials, type Principal, type SanKind, type Scope, type VerifiedCertificate } from './auth-types.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set once the request's credentials resolved to a principal (even if it lacks the scope). */
    principal: Principal | null;
  }
}

/** SANs read from a certificate at most (a certificate with more is not a credential). */
export const MAX_CERTIFICATE_SANS = 64;

const SAN_KINDS: Readonly<Record<string, SanKind>> = { DNS: 'dns', email: 'email', URI: 'uri', 'IP Address': 'ip' };

/**
 * Node's `subjectaltname` text: `DNS:a, IP Address:127.0.0.1, URI:"x,y"` — a value holding
 * a comma or quote is written as a JSON string. Unknown kinds are skipped; null if garbled.
 */
export function parseSubjectAltName(text: string | undefined): Array<{ kind: SanKind; value: string }> | null {
  const out: Array<{ kind: SanKind; value: string }> = [];
  if (text === undefined || text === '') return out;
  let i = 0;
  while (i < text.length) {
    if (out.length > MAX_CERTIFICATE_SANS) return null;
    const colon = text.indexOf(':', i);
    if (colon < 0) return null;
    const kind = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      // A JSON string: find its closing quote (a backslash escapes the next character).
      let j = colon + 2;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) return null;
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        return null;
      }
      end = j + 1;
    } else {
      const comma = text.indexOf(', ', colon + 1);
      end = comma < 0 ? text.length : comma;
      value = text.slice(colon + 1, end);
    }
    const k = SAN_KINDS[kind];
    if (k !== undefined) out.push({ kind: k, value });
    if (end < text.length && text.slice(end, end + 2) !== ', ') return null;
    i = end + 2;
  }
  return out;
}

function certificateOf(peer: DetailedPeerCertificate): VerifiedCertificate | null {
  if (typeof peer.serialNumber !== 'string') return null;
  const cn: unknown = peer.subject?.CN;
  const subjectCN = typeof cn === 'string' ? [cn] : Array.isArray(cn) ? cn.filter((c): c is string => typeof c === 'string') : [];
  const san = parseSubjectAltName(peer.subjectaltname);
  if (san === null) return null;
  return { subjectCN, san, serial: peer.serialNumber };
}

/** Per TLS connection (HTTP/2: per session), the certificate it verified, read once. */
const certificates = new WeakMap<object, VerifiedCertificate | null>();

/**
 * The client certificate of this request's connection, only when the TLS layer verified it
 * against the server's `ca` (the cluster CA); a server without one never asks for certificates.
 */
export function verifiedCertificate(req: FastifyRequest): VerifiedCertificate | undefined {
  const raw = req.raw;
  const socket = raw.socket as Partial<TLSSocket> | null;
  if (socket === null || socket.encrypted !== true || socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined;
  // On HTTP/2 `raw.socket` is a fresh proxy per stream; the session is the connection.
  const key: object = raw instanceof Http2ServerRequest ? raw.stream.session ?? socket : socket;
  let cert = certificates.get(key);
  if (cert === undefined) {
    cert = certificateOf(socket.getPeerCertificate(false) as DetailedPeerCertificate);
    certificates.set(key, cert);
  }
  return cert ?? undefined;
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function credentialsOf(req: FastifyRequest): Credentials {
  return {
    authorization: firstHeader(req.headers.authorization),
    apiKey: firstHeader(req.headers['x-api-key']),
    certificate: verifiedCertificate(req),
    source: req.ip,
  };
}

/** Authenticates the request and requires `scope`; records the principal on the request. */
export function authorize(auth: Authenticator, req: FastifyRequest, scope: Scope): Principal | AuthFailure {
  const result = auth.authenticate(credentialsOf(req));
  if (!isPrincipal(result)) return result;
  req.principal = result;
  if (!result.scopes.has(scope)) return { code: 'PERMISSION_DENIED', message: `this call needs the '${scope}' scope` };
  return result;
}
