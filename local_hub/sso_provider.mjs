// A local OpenID Connect provider for the local hub (`hub:local -- --sso`) and the tests: the
// certified `oidc-provider` library (npm), configured with one client (the hub) and test users,
// listening on 127.0.0.1. It stands in for production's Keycloak realm; `local_hub/sso_provider.py`
// starts it.
//
//   node local_hub/sso_provider.mjs CONFIG.json
//
// CONFIG.json: {"issuer": "http://127.0.0.1:PORT", "port": PORT, "module": "/abs/path/to/oidc-provider",
//               "client": {"client_id": ..., "client_secret": ..., "redirect_uris": [...]},
//               "users": {"name": "password", ...}}
//
// The sign-in page is this file's own (a form with username and password, checked against the
// users); consent is implied for the one client, as for a first-party application. Prints
// "ready <issuer>" when it accepts connections.

import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { default: Provider } = await import(pathToFileURL(config.module).href);

const SCOPES = "openid profile email";

const escape = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const provider = new Provider(config.issuer, {
  clients: [
    {
      ...config.client,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  cookies: { keys: [config.cookie_key || "local-sso-provider"] },
  claims: { openid: ["sub"], profile: ["preferred_username", "name"], email: ["email"] },
  async findAccount(ctx, sub) {
    if (!Object.hasOwn(config.users, sub)) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: sub, name: sub, email: `${sub}@example.test` };
      },
    };
  },
  // The hub is a first-party client: its scopes are granted without a consent page.
  async loadExistingGrant(ctx) {
    const grantId =
      ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const existing = await ctx.oidc.provider.Grant.find(grantId);
      if (existing) return existing;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(SCOPES);
    await grant.save();
    return grant;
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false } },
});

function loginPage(uid, error) {
  return `<!doctype html><html><head><title>Sign in</title></head><body>
<h1>Sign in</h1>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Username <input name="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form></body></html>`;
}

async function formBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error("interaction mismatch");
  if (req.method === "GET" && !action) {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(loginPage(uid));
    return;
  }
  if (req.method === "POST" && action === "login") {
    const form = await formBody(req);
    const username = form.get("username") || "";
    if (!Object.hasOwn(config.users, username) || config.users[username] !== form.get("password")) {
      res.writeHead(401, { "content-type": "text/html; charset=utf-8" });
      res.end(loginPage(uid, "Unknown username or wrong password."));
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: username } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  res.writeHead(405);
  res.end();
}

const handle = provider.callback();
const server = createServer(async (req, res) => {
  const match = /^\/interaction\/([^/?]+)(?:\/([a-z]+))?(?:\?.*)?$/.exec(req.url);
  if (!match) return handle(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (error) {
    res.writeHead(400, { "content-type": "text/plain; charset=utf-8" });
    res.end(`Sign-in failed: ${error.message}`);
  }
});
server.listen(config.port, "127.0.0.1", () => console.log(`ready ${config.issuer}`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
