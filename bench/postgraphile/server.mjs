// PostGraphile v5 for the benchmark: the comparison server of bench/run.py.
//
// Owns: serving schemas $PG_SCHEMAS of $PG_DSN on 127.0.0.1:$PORT with
// $WORKERS node:cluster processes (round-robin connection spread), and the
// per-request pgSettings (dbx.org_id, dbx.user_id) taken from an HS256 JWT
// verified with $JWT_SECRET, so row-level security applies exactly as it does
// for DBX. Must not: bypass RLS, listen beyond loopback, or write anything.
//
// bench/run.py copies this file next to its node_modules in bench/.scratch/
// (ESM resolves imports from the file's own folder) and runs it with Node 22.
// `node server.mjs --print-schema` prints the generated SDL and exits.
import cluster from "node:cluster";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { printSchema } from "postgraphile/graphql";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const env = process.env;
const PORT = Number(env.PORT ?? 5678);
const WORKERS = Number(env.WORKERS ?? 2);
const SCHEMAS = (env.PG_SCHEMAS ?? "dbx_aviation").split(",");
const SECRET = env.JWT_SECRET ?? "";
const POOL_MAX = Number(env.POOL_MAX ?? 8);
// Idle connections go back soon: through session-mode PgBouncer each one pins
// a server connection that the next server under test may need.
const POOL_IDLE_MS = Number(env.POOL_IDLE_MS ?? 1000);

function b64url(buf) {
  return Buffer.from(buf).toString("base64url");
}

// HS256 only: a token with any other alg, a bad signature or past exp is refused.
function verifyJwt(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("malformed token");
  const header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
  if (header.alg !== "HS256") throw new Error("unsupported alg");
  const expected = b64url(createHmac("sha256", SECRET).update(`${parts[0]}.${parts[1]}`).digest());
  const a = Buffer.from(expected);
  const b = Buffer.from(parts[2]);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new Error("bad signature");
  const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  if (typeof claims.exp === "number" && claims.exp < Date.now() / 1000) throw new Error("expired");
  if (typeof claims.org_id !== "string") throw new Error("no org_id");
  return claims;
}

function authorization(requestContext) {
  const viaHttp = requestContext.http?.getHeader?.("authorization");
  return viaHttp ?? requestContext.node?.req?.headers?.authorization ?? "";
}

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: env.PG_DSN,
      schemas: SCHEMAS,
      poolConfig: { max: POOL_MAX, idleTimeoutMillis: POOL_IDLE_MS },
    }),
  ],
  grafast: {
    context(requestContext) {
      const header = authorization(requestContext);
      const match = /^Bearer (.+)$/.exec(header);
      if (!match) throw new Error("UNAUTHENTICATED");
      const claims = verifyJwt(match[1]);
      return {
        pgSettings: { "dbx.org_id": claims.org_id, "dbx.user_id": String(claims.sub ?? "") },
      };
    },
  },
  grafserv: { graphqlPath: "/graphql", graphiql: false, watch: false },
  schema: { exportSchemaSDLPath: undefined },
};

async function serve() {
  const pgl = postgraphile(preset);
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  server.keepAliveTimeout = 65_000;
  await serv.addTo(server);
  server.listen(PORT, "127.0.0.1");
}

if (process.argv.includes("--print-schema")) {
  const pgl = postgraphile(preset);
  const { schema } = await pgl.getSchemaResult();
  process.stdout.write(printSchema(schema));
  await pgl.release();
  process.exit(0);
} else if (cluster.isPrimary && WORKERS > 1) {
  // node:cluster's primary accepts and hands connections out round robin.
  cluster.schedulingPolicy = cluster.SCHED_RR;
  for (let i = 0; i < WORKERS; i += 1) cluster.fork();
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w?.process.kill("SIGTERM");
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  cluster.on("exit", (_w, code, signal) => {
    if (signal !== "SIGTERM") console.error(`postgraphile worker exited: ${code ?? signal}`);
  });
} else {
  await serve();
}
