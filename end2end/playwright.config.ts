import { defineConfig } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

// The built server on its own port and a fresh data directory, with the demo realm and a key.
const port = Number(process.env.E2E_PORT ?? 3107);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessions-e2e-'));
export const baseURL = `http://127.0.0.1:${port}`;
export const apiKey = 'e2e-bootstrap-key-0123456789abcdef';
export const adminPassword = 'e2e-admin-password-42';
// The debug build by default; `make test` points this at the release build it makes.
const server = process.env.E2E_SERVER ?? '../target/debug/server';
// Which store the server runs on: `embedded` (a sled data directory, the default) or `postgres`
// (a scratch PostgreSQL on 127.0.0.1, started for the run and deleted after it by the project's
// `with-scratch-postgres`). `make test` runs the suite on both.
export const store = process.env.E2E_STORE ?? 'embedded';
const scratchPostgres = process.env.E2E_SCRATCH_POSTGRES ?? '../target/debug/with-scratch-postgres';
const storeArgs = store === 'postgres' ? '--store {store}' : `--data-dir ${dataDir}`;
if (store !== 'embedded' && store !== 'postgres') {
  throw new Error(`E2E_STORE must be embedded or postgres, not ${store}`);
}
const serve = `${server} serve --addr 127.0.0.1:${port} ${storeArgs} --demo`;
// Small GeoIP databases placing the documentation ranges (203.0.113.0/24 in Germany,
// 198.51.100.0/24 in France, 192.0.2.0/24 in the US, 2001:db8::/32 in Japan), written by the
// project's own tool (`make test` builds it).
const fixture = process.env.E2E_GEOIP_FIXTURE ?? '../target/debug/geoip-fixture';
const [geoipDb, asnDb] = execFileSync(fixture, [fs.mkdtempSync(path.join(os.tmpdir(), 'sessions-geoip-'))])
  .toString().trim().split('\n');

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL,
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--no-first-run'],
    },
  },
  webServer: {
    command: store === 'postgres' ? `${scratchPostgres} ${serve}` : serve,
    url: `${baseURL}/healthz`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    env: {
      LEPTOS_SITE_ROOT: '../target/site',
      LEPTOS_OUTPUT_NAME: 'sessions-admin',
      SESSIONS_BOOTSTRAP_API_KEY: apiKey,
      SESSIONS_GEOIP_DB: geoipDb,
      SESSIONS_ASN_DB: asnDb,
      SESSIONS_ADMIN_PASSWORD: adminPassword,
      // Plain http on 127.0.0.1, as `make run`; the receivers of the delivery tests are local.
      SESSIONS_PLAIN_HTTP_COOKIES: 'true',
      SESSIONS_BACKCHANNEL_ALLOW_HOSTS: '127.0.0.1,localhost',
      RUST_LOG: 'warn',
      // Failed deliveries wait a minute before retrying, so "retry now" is what retries them.
      SESSIONS_DELIVERY_FIRST_BACKOFF_MS: '60000',
    },
  },
});
