import { test, expect } from '@playwright/test';
import { api, hydrated, signIn } from './helpers';

// The browser tests' server reads the project's test GeoIP databases (playwright.config.ts):
// 203.0.113.0/24 is Berlin (AS3320), 198.51.100.0/24 Paris (AS3215), 192.0.2.0/24 New York
// (AS7922); 10.0.0.0/8 is nowhere.
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

async function start(request: any, subject: string, ip: string, ua: string) {
  const r = await api(request, 'POST', '/api/v1/realms/e2e-geo/sessions', { subject_id: subject, ip, user_agent: ua });
  expect(r.status).toBe(201);
  return r.body;
}

test('the network column, country filter, anomaly counts and ending the anomalous with a preview', async ({ page, request }) => {
  // Every refresh is written, so one from a new address is kept at once (else within a minute).
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-geo', { latest_access_update_interval_secs: 0 })).status).toBe(200);
  await start(request, 'ana', '203.0.113.10', FIREFOX);
  await start(request, 'ana', '198.51.100.10', FIREFOX);
  const ben = await start(request, 'ben', '192.0.2.10', IPHONE);
  await start(request, 'cai', '10.0.0.5', FIREFOX);
  // Ben's phone refreshes from Berlin: a changed country.
  const moved = await api(request, 'POST', '/api/v1/realms/e2e-geo/sessions/validate',
    { token: ben.token, ip: '203.0.113.77', fields: 'full' });
  expect(moved.status).toBe(200);
  expect(moved.body.session.last_network.country).toBe('DE');

  await signIn(page);
  await page.goto('/?realm=e2e-geo');
  await hydrated(page);
  const row = (subject: string) => page.locator('table.sessions tbody tr', { hasText: subject });
  await expect(page.locator('table.sessions th', { hasText: 'Network' })).toBeVisible();
  await expect(row('ben').locator('td.network .place').first()).toHaveText('New York, US');
  await expect(row('ben').locator('td.network .moved-to .place')).toHaveText('Berlin, DE');
  await expect(row('ben').locator('td.ip')).toContainText('203.0.113.77');
  await expect(row('cai').locator('td.network')).toHaveText('—');
  await expect(row('ana').first().locator('td.network .asn')).toContainText('AS');
  await page.screenshot({ path: 'test-results/networks-column.png', fullPage: true });

  await page.getByLabel('Country', { exact: true }).fill('fr');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–1 of 1');
  await expect(row('ana').locator('td.network .place')).toHaveText('Paris, FR');
  await page.goto('/?realm=e2e-geo&asn=AS7922');
  await hydrated(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–1 of 1');

  // The overview counts each anomaly; a tile leads to its sessions.
  await page.goto('/realms/e2e-geo/overview');
  await hydrated(page);
  const tile = (name: string) => page.locator(`a.tile.anomaly[data-anomaly="${name}"] .tile-value`);
  await expect(tile('country_spread')).toHaveText('3');
  await expect(tile('country_changed')).toHaveText('1');
  await expect(tile('new_device')).toHaveText('0');
  await page.screenshot({ path: 'test-results/networks-overview.png', fullPage: true });
  await page.locator('a.tile.anomaly[data-anomaly="country_changed"]').click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–1 of 1');
  await hydrated(page);
  expect(page.url()).toContain('anomaly=country_changed');
  await expect(page.getByLabel('Anomaly')).toHaveValue('country_changed');

  await page.getByRole('button', { name: 'End all 1 matching' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.locator('h2')).toContainText('anomaly=country_changed');
  await dialog.getByLabel('Reason').fill('impossible travel');
  await dialog.getByRole('button', { name: 'Preview' }).click();
  await expect(dialog.locator('[data-preview]')).toHaveText('Would end 1 session, 0 clients affected.');
  await page.screenshot({ path: 'test-results/networks-anomaly-preview.png', fullPage: true });
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByRole('status')).toHaveText('Ended 1 session, 0 clients affected.');
  const left = await api(request, 'GET', '/api/v1/realms/e2e-geo/sessions');
  expect(left.body.total_count).toBe(3);
  expect(left.body.results.some((s: any) => s.sid === ben.sid)).toBe(false);

  // The history keeps where the ended session was, who ended it and why.
  await page.goto('/ended?realm=e2e-geo');
  await hydrated(page);
  const gone = page.locator(`tr[data-sid="${ben.sid}"]`);
  await expect(gone.locator('td.ip .place').first()).toHaveText('New York, US');
  await expect(gone.locator('td.ip .moved-to')).toContainText('203.0.113.77');
  await expect(gone.locator('td.ending .why')).toHaveText('impossible travel');
  await page.screenshot({ path: 'test-results/networks-ended.png', fullPage: true });

  // The spread is now Ana's alone.
  await page.goto('/?realm=e2e-geo&anomaly=country_spread');
  await hydrated(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–2 of 2');

  // A session's own page says where it is.
  const paris = left.body.results.find((s: any) => s.ip === '198.51.100.10');
  await page.goto(`/sessions/e2e-geo/${paris.sid}`);
  await hydrated(page);
  await expect(page.locator('.detail dd', { hasText: 'Paris, FR' })).toContainText('AS3215 Orange S.A.');
});

test('a malformed country says which filter is wrong', async ({ page }) => {
  await signIn(page);
  await page.goto('/?realm=demo&country=Germany');
  await expect(page.getByRole('alert')).toContainText('country');
});
