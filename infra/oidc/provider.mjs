// The local stack's OpenID Connect provider: oidc-provider (OpenID Certified; pinned by
// package-lock.json, installed by infra/setup.sh into .tools/oidc), configured as a real
// provider would be for this API: one confidential client, authorization code with PKCE
// (S256, required), RS256 ID tokens, the openid and email scopes.
//
// Its sign-in page is the only thing made up: any account name signs in (no password), and
// the account's claims follow from the name — `sub` is the name, `email` is the name when it
// holds an @ (else <name>@example.test), and `email_verified` is false for names starting
// with "unverified-". Consent is given on sign-in (a first-party client).
//
// For the attack tests, `POST /_local/tamper {"code": "...", ...}` makes the token response
// for that authorization code carry an ID token altered as asked (`iss`, `aud`, `azp`, `nonce`,
// `exp_offset` / `iat_offset` seconds from now, `unknown_key`: signed by a key the provider never
// published),
// re-signed with the provider's key unless unknown_key. Loopback only.
//
// node infra/oidc/provider.mjs --port P --client-id ID --client-secret-file F \
//   --redirect-uri URL [--redirect-uri URL] --modules .tools/oidc

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret-file': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    modules: { type: 'string' },
  },
});

const require = createRequire(join(resolve(args.modules), 'package.json'));
const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')));
const jose = await import(pathToFileURL(require.resolve('jose')));

const issuer = `http://127.0.0.1:${args.port}`;
const clientSecret = readFileSync(args['client-secret-file'], 'utf8').trim();

async function signingKey(kid) {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}
const key = await signingKey(`local-${randomBytes(4).toString('hex')}`);

function claimsOf(accountId) {
  const email = accountId.includes('@') ? accountId : `${accountId}@example.test`;
  return { sub: accountId, email, email_verified: !accountId.startsWith('unverified-') };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: clientSecret,
    redirect_uris: args['redirect-uri'],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [key] },
  pkce: { required: () => true },
  scopes: ['openid', 'email'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => claimsOf(id) }),
  // The email claims in the ID token itself (as most providers put them), not only at userinfo.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  ttl: { AuthorizationCode: 60, IdToken: 300, Interaction: 600, Session: 600, Grant: 600 },
  renderError: async (ctx, out) => { ctx.type = 'json'; ctx.body = out; },
});

async function form(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

const tampers = new Map(); // authorization code -> changes to its ID token

async function tampered(idToken, changes) {
  const claims = jose.decodeJwt(idToken);
  if (changes.iss !== undefined) claims.iss = changes.iss;
  if (changes.aud !== undefined) claims.aud = changes.aud;
  if (changes.nonce !== undefined) claims.nonce = changes.nonce;
  if (changes.azp !== undefined) claims.azp = changes.azp;
  if (changes.iat_offset !== undefined) claims.iat = Math.floor(Date.now() / 1000) + changes.iat_offset;
  if (changes.exp_offset !== undefined) {
    claims.exp = Math.floor(Date.now() / 1000) + changes.exp_offset;
    claims.iat = Math.min(claims.iat, claims.exp - 60);
  }
  const signer = changes.unknown_key ? await signingKey('unknown-key') : key;
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: signer.kid, typ: 'JWT' })
    .sign(await jose.importJWK(signer, 'RS256'));
}

provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/_local/tamper') {
    const plan = JSON.parse((await (async () => { let b = ''; for await (const c of ctx.req) b += c; return b; })()) || '{}');
    tampers.set(plan.code, plan);
    ctx.status = 204;
    return;
  }
  const login = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (login && ctx.method === 'GET' && !login[2]) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>Sign in (local provider)</title>
<form method="post" action="/interaction/${details.uid}/login">
<label>Account <input name="account" autofocus></label> <button>Sign in</button></form>`;
    return;
  }
  if (login && ctx.method === 'POST' && login[2]) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const { account } = await form(ctx.req);
    if (!account || !/^[A-Za-z0-9._@+-]{1,64}$/.test(account)) {
      ctx.status = 400;
      ctx.body = 'account: 1 to 64 of A-Z a-z 0-9 . _ @ + -';
      return;
    }
    const grant = new provider.Grant({ accountId: account, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope || 'openid'));
    const grantId = await grant.save();
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res,
      { login: { accountId: account }, consent: { grantId } }, { mergeWithLastSubmission: false });
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && ctx.body && ctx.body.id_token) {
    const code = ctx.oidc && ctx.oidc.params && ctx.oidc.params.code;
    const plan = code && tampers.get(code);
    if (plan) {
      tampers.delete(code);
      ctx.body = { ...ctx.body, id_token: await tampered(ctx.body.id_token, plan) };
    }
  }
});

provider.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`oidc-provider ${issuer} (client ${args['client-id']})`);
});
