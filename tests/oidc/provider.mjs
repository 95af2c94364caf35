// The OpenID Connect provider the OAuth tests sign in against: the npm package
// oidc-provider (pinned in tests/package.json), on a free loopback port.
//
// Started by the `oidc` fixture in tests/oidc_provider.py with, in the environment:
//   OIDC_ACCOUNTS       JSON {login: {email, email_verified, name, github_id}}: who can sign in
//   OIDC_REDIRECT_URIS  JSON list of the test apps' callback URLs
// It prints one JSON line {"issuer": ...} once it listens, and exits when stdin closes.
//
// Sign-in and consent are oidc-provider's own development interactions (any login, any
// password), which the tests answer like a browser. Besides the protocol it serves:
//   - clients that misbehave on purpose, so the app's failure paths meet real answers:
//     "expiring" (its codes live one second), "slow" (its token requests hang),
//     "tampered" (the signature of its ID tokens is broken on the way out);
//   - /github-api/user and /github-api/user/emails, GitHub's API shape over this
//     provider's own access tokens, so the GitHub preset runs against it;
//   - /slow/.well-known/openid-configuration, a discovery document that never comes;
//     /empty/... one without endpoints, /failing/... an HTTP 503.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const ACCOUNTS = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');
const REDIRECT_URIS = JSON.parse(process.env.OIDC_REDIRECT_URIS || '[]');
const HANG_MS = 5000;

const client = (id, extra = {}) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  redirect_uris: REDIRECT_URIS,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  ...extra,
});

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const configuration = {
  clients: [
    client('corp'),
    client('google'),
    client('github', { token_endpoint_auth_method: 'client_secret_post' }),
    client('expiring'),
    client('slow'),
    client('tampered'),
  ],
  scopes: ['openid', 'offline_access', 'read:user', 'user:email'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'picture'],
  },
  async findAccount(_ctx, sub) {
    const profile = ACCOUNTS[sub] || {};
    return {
      accountId: sub,
      async claims() {
        const { github_id: _github, ...claims } = profile;
        return { sub, preferred_username: sub, ...claims };
      },
    };
  },
  pkce: { required: () => true }, // the app must send an S256 challenge, or nothing works
  ttl: {
    AuthorizationCode: (_ctx, _code, c) => (c.clientId === 'expiring' ? 1 : 60),
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  jwks: { keys: [{ ...signingKey, use: 'sig', alg: 'RS256' }] },
};

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function basicClientId(ctx) {
  const header = ctx.get('authorization');
  if (!header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString();
  return decodeURIComponent(decoded.split(':')[0]);
}

function tamper(jwt) {
  const [header, payload, signature] = jwt.split('.');
  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
  return [header, payload, flipped].join('.');
}

async function githubAccount(provider, ctx) {
  const header = ctx.get('authorization');
  const value = header.replace(/^(bearer|token) /i, '');
  const token = value && value !== header ? await provider.AccessToken.find(value) : undefined;
  if (!token) {
    ctx.status = 401;
    ctx.body = { message: 'Bad credentials' };
    return undefined;
  }
  return { login: token.accountId, ...(ACCOUNTS[token.accountId] || {}) };
}

async function standIns(provider, ctx, next) {
  if (ctx.path === '/slow/.well-known/openid-configuration') {
    await sleep(HANG_MS);
    ctx.status = 504;
    return undefined;
  }
  if (ctx.path === '/empty/.well-known/openid-configuration') {
    ctx.body = {};
    return undefined;
  }
  if (ctx.path === '/failing/.well-known/openid-configuration') {
    ctx.status = 503;
    ctx.body = 'unavailable';
    return undefined;
  }
  if (ctx.path === '/github-api/user') {
    const account = await githubAccount(provider, ctx);
    if (account) {
      ctx.body = {
        id: account.github_id,
        login: account.login,
        name: account.name ?? null,
        email: null, // GitHub shows only a public email here; the address comes from /emails
        avatar_url: `https://avatars.example/${account.login}`,
      };
    }
    return undefined;
  }
  if (ctx.path === '/github-api/user/emails') {
    const account = await githubAccount(provider, ctx);
    if (account) {
      const verified = !!account.email_verified;
      ctx.body = account.email ? [
        { email: `old-${account.email}`, primary: false, verified, visibility: null },
        { email: account.email, primary: true, verified, visibility: 'private' },
      ] : [];
    }
    return undefined;
  }
  if (ctx.path === '/token' && basicClientId(ctx) === 'slow') {
    await sleep(HANG_MS);
  }
  await next();
  if (ctx.path === '/token' && basicClientId(ctx) === 'tampered' && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: tamper(ctx.body.id_token) };
  }
  return undefined;
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  provider.use((ctx, next) => standIns(provider, ctx, next));
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
