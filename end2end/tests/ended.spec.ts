import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import { api, hydrated, signIn } from './helpers';

const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0';

test('the Ended view shows a revoked session with its actor, reason and what each client heard', async ({ page, request }) => {
  // A relying party on loopback that acknowledges every logout notification.
  const rp = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => { res.statusCode = 200; res.end(); });
  });
  await new Promise<void>((resolve) => rp.listen(0, '127.0.0.1', resolve));
  const port = (rp.address() as AddressInfo).port;
  try {
    expect((await api(request, 'PUT', '/api/v1/realms/e2e-ended', {})).status).toBe(200);
    const reg = await api(request, 'PUT', '/api/v1/realms/e2e-ended/clients/shop', {
      backchannel_logout_uri: `http://127.0.0.1:${port}/logout`,
    });
    expect(reg.status).toBe(200);
    const victim = await api(request, 'POST', '/api/v1/realms/e2e-ended/sessions', {
      subject_id: 'mallory', display_name: 'Mallory Phished', client_ids: ['shop', 'wiki'],
      ip: '198.51.100.23', user_agent: FIREFOX,
    });
    const other = await api(request, 'POST', '/api/v1/realms/e2e-ended/sessions', { subject_id: 'trent' });
    expect((await api(request, 'POST', '/api/v1/realms/e2e-ended/sessions/logout', { token: other.body.token })).status).toBe(200);

    await signIn(page);
    await page.goto('/?realm=e2e-ended');
    await hydrated(page);
    await page.getByRole('checkbox', { name: 'Select session of Mallory Phished' }).check();
    await page.getByRole('button', { name: 'End selected (1)' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason').fill('phishing report 42');
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByRole('status')).toContainText('Ended 1 session');

    await page.getByRole('link', { name: 'Ended', exact: true }).click();
    await expect(page.locator('h1')).toHaveText('Ended sessions');
    await page.goto('/ended?realm=e2e-ended');
    await hydrated(page);
    await expect(page.locator('.pager .summary')).toHaveText('2 ended sessions');
    const row = page.locator(`tr[data-sid="${victim.body.sid}"]`);
    await expect(row.locator('td.ending .how')).toHaveText('Revoked');
    await expect(row.locator('td.ending .who')).toHaveText('by admin:admin');
    await expect(row.locator('td.ending .why')).toHaveText('phishing report 42');
    await expect(row.locator('td.device')).toHaveText('Desktop: Firefox 133 on Windows');
    await expect(row.locator('[data-client="wiki"]')).toHaveText('wikinot notified');
    // The worker delivers the notification; the page shows it once reloaded.
    await expect(async () => {
      await page.reload();
      await expect(row.locator('[data-client="shop"]')).toHaveText('shopdelivered', { timeout: 1000 });
    }).toPass({ timeout: 20_000 });
    await expect(page.locator(`tr[data-sid="${other.body.sid}"] td.ending .how`)).toHaveText('Logged out');
    await page.screenshot({ path: 'test-results/ended-view.png', fullPage: true });

    // The export of what the page lists.
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    expect(csv.suggestedFilename()).toBe('ended-sessions-e2e-ended.csv');
    const lines = fs.readFileSync(await csv.path(), 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('sid,subject_id,display_name,ip,browser,os,device_type,created_at,last_access_at,ended_at,how,actor,reason,client_ids,notices,last_ip,country,last_country');
    expect(lines.length).toBe(3);
    expect(lines.find((l) => l.startsWith(victim.body.sid))).toContain(',revoked,admin:admin,phishing report 42,shop wiki,delivered not_sent');

    // Filtered by how it ended, through the form.
    await hydrated(page);
    await page.getByLabel('How it ended').selectOption('logout');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect(page.locator('.pager .summary')).toHaveText('1 ended session');
    await expect(page.locator('table.ended tbody tr')).toHaveCount(1);
    expect(page.url()).toContain('how=logout');

    // The subject's page shows its history too.
    await page.goto('/realms/e2e-ended/users/mallory');
    await hydrated(page);
    await expect(page.getByRole('heading', { name: 'Ended sessions (1)' })).toBeVisible();
    await expect(page.locator('table.ended td.ending .why')).toHaveText('phishing report 42');
  } finally {
    rp.close();
  }
});

test('a malformed history filter says what is wrong', async ({ page }) => {
  await signIn(page);
  await page.goto('/ended?realm=demo&how=vanished');
  await expect(page.getByRole('alert')).toContainText('how must be one of');
});
