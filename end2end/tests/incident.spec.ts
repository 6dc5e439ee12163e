import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import { api, hydrated, signIn } from './helpers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A time as a datetime-local input takes it, in UTC, to the second. */
const localUtc = (d: Date) => d.toISOString().slice(0, 19);

test('end sessions by CIDR range and creation time, with a preview', async ({ page, request }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-inc', {})).status).toBe(200);
  for (const [subject, ip] of [['mallory', '203.0.113.5'], ['trent', '203.0.113.77'], ['peggy', '::ffff:203.0.113.9'], ['victor', '198.51.100.9']]) {
    expect((await api(request, 'POST', '/api/v1/realms/e2e-inc/sessions', { subject_id: subject, ip })).status).toBe(201);
  }
  // The cut: the next whole second, and the late session after it.
  const cut = new Date(Math.ceil((Date.now() + 1) / 1000) * 1000);
  await sleep(cut.getTime() - Date.now() + 200);
  const late = await api(request, 'POST', '/api/v1/realms/e2e-inc/sessions', { subject_id: 'walter', ip: '203.0.113.50' });

  await signIn(page);
  await page.goto('/?realm=e2e-inc');
  await hydrated(page);
  await page.getByLabel('Client address').fill('203.0.113.0/24');
  await page.getByLabel('Created before (UTC)').fill(localUtc(cut));
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–3 of 3');
  await hydrated(page);
  await expect(page.locator('table.sessions')).not.toContainText('walter');
  await expect(page.locator('table.sessions')).not.toContainText('victor');

  await page.getByRole('button', { name: 'End all 3 matching' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.locator('h2')).toContainText('ip=203.0.113.0/24');
  await expect(dialog.locator('h2')).toContainText(`created_before=${cut.toISOString().slice(0, 19)}Z`);
  await dialog.getByLabel('Reason').fill('incident 14: stolen cookies');
  await dialog.getByRole('button', { name: 'Preview' }).click();
  await expect(dialog.locator('[data-preview]')).toHaveText('Would end 3 sessions, 0 clients affected.');
  await page.screenshot({ path: 'test-results/revoke-by-cidr-preview.png', fullPage: true });
  // The preview ended nothing.
  expect((await api(request, 'GET', '/api/v1/realms/e2e-inc')).body.session_count).toBe(5);
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByRole('status')).toHaveText('Ended 3 sessions, 0 clients affected.');

  const left = await api(request, 'GET', '/api/v1/realms/e2e-inc/sessions?ip=203.0.113.0%2F24');
  expect(left.body.total_count).toBe(1);
  expect(left.body.results[0].sid).toBe(late.body.sid);
  expect((await api(request, 'GET', '/api/v1/realms/e2e-inc')).body.session_count).toBe(2);
  const audit = await api(request, 'GET', '/api/v1/audit?count=5');
  const entry = audit.body.results.find((e: any) => e.action === 'end_sessions' && e.realm === 'e2e-inc');
  expect(entry.actor).toBe('admin:admin');
  expect(entry.reason).toBe('incident 14: stolen cookies');
  expect(entry.target).toContain('ip=203.0.113.0/24');
});

test('a malformed address filter says what is wrong', async ({ page }) => {
  await signIn(page);
  await page.goto('/?realm=demo&ip=203.0.113.0%2F33');
  await expect(page.getByRole('alert')).toContainText('CIDR');
});

test('export downloads the current query as CSV and JSON lines', async ({ page, request }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-exp', {})).status).toBe(200);
  for (let i = 0; i < 5; i++) {
    const ip = i < 3 ? `10.9.0.${i}` : `10.8.0.${i}`;
    await api(request, 'POST', '/api/v1/realms/e2e-exp/sessions', { subject_id: `u${i}`, display_name: `User, "${i}"`, ip });
  }
  await signIn(page);
  await page.goto('/?realm=e2e-exp&ip=10.9.0.0%2F16');
  await hydrated(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–3 of 3');
  await page.screenshot({ path: 'test-results/sessions-filters-export.png', fullPage: true });

  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
  expect(csv.suggestedFilename()).toBe('sessions-e2e-exp.csv');
  const text = fs.readFileSync(await csv.path(), 'utf8');
  const lines = text.trimEnd().split('\n');
  expect(lines[0]).toBe('sid,subject_id,display_name,created_at,last_access_at,idle_expires_at,expires_at,client_ids,ip,user_agent,browser,os,device_type,country,city,asn,asn_org,last_ip,last_country');
  expect(lines.length).toBe(4);
  expect(lines.slice(1).every((l) => l.includes(',10.9.0.'))).toBe(true);
  expect(text).toContain('"User, ""0"""');

  const [jsonl] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export JSON lines' }).click()]);
  expect(jsonl.suggestedFilename()).toBe('sessions-e2e-exp.jsonl');
  const rows = fs.readFileSync(await jsonl.path(), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
  expect(rows.map((r) => r.subject_id).sort()).toEqual(['u0', 'u1', 'u2']);

  // Without the dashboard cookie the download is refused.
  const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
  const anonymous = await request.get(href!, { headers: { Cookie: '' } });
  expect(anonymous.status()).toBe(401);
  const audit = await api(request, 'GET', '/api/v1/audit?count=5');
  expect(audit.body.results.some((e: any) => e.action === 'export_sessions' && e.realm === 'e2e-exp' && e.target.includes('ip=10.9.0.0/16'))).toBe(true);
});

test('the subject page shows every session, grant and delivery, and ends them all', async ({ page, request }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-user', {})).status).toBe(200);
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-user/clients/portal',
    { name: 'Portal', backchannel_logout_uri: 'http://127.0.0.1:9/logout' })).status).toBe(200);
  const first = await api(request, 'POST', '/api/v1/realms/e2e-user/sessions', { subject_id: 'zoe', display_name: 'Zoe Q', client_ids: ['portal'] });
  await api(request, 'POST', '/api/v1/realms/e2e-user/sessions', { subject_id: 'zoe', display_name: 'Zoe Q', client_ids: ['portal'], ip: '192.0.2.4' });
  await api(request, 'POST', '/api/v1/realms/e2e-user/sessions', { subject_id: 'yann', client_ids: ['portal'] });
  const expires = new Date(Date.now() + 86_400_000).toISOString();
  expect((await api(request, 'POST', '/api/v1/realms/e2e-user/grants',
    { kind: 'consent', subject_id: 'zoe', client_id: 'portal', expires_at: expires, scopes: ['openid'] })).status).toBe(201);
  // One of her sessions ended already: a logout notification to the portal.
  expect((await api(request, 'POST', '/api/v1/realms/e2e-user/sessions/remove', { sids: [first.body.sid], revoke_consents: false })).status).toBe(200);

  await signIn(page);
  await page.goto('/?realm=e2e-user&subject_id=zoe');
  await hydrated(page);
  await page.locator('table.sessions tbody tr').first().getByRole('link', { name: 'zoe' }).click();
  await expect(page).toHaveURL(/\/realms\/e2e-user\/users\/zoe$/);
  await hydrated(page);
  await expect(page.locator('h1')).toContainText('zoe');
  await expect(page.getByRole('heading', { name: 'Sessions (1)', exact: true })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Tokens and consents (1)' })).toBeVisible();
  await expect(page.locator('table.grants')).toContainText('consent');
  await expect(page.locator('table.deliveries tbody tr')).toHaveCount(1);
  await expect(page.locator('table.deliveries')).toContainText('portal');
  await expect(page.locator('table.sessions:not(.deliveries):not(.ended)')).not.toContainText('yann');
  await page.screenshot({ path: 'test-results/subject-page.png', fullPage: true });

  await page.getByRole('button', { name: 'End all' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.locator('h2')).toHaveText('End all sessions of zoe');
  await dialog.getByRole('button', { name: 'Preview' }).click();
  await expect(dialog.locator('[data-preview]')).toContainText('Would end 1 session, 1 client affected');
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByRole('status')).toContainText('Ended 1 session, 1 client affected');
  await expect(page.getByRole('heading', { name: 'Sessions (0)', exact: true })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Tokens and consents (0)' })).toBeVisible();
  await expect(page.locator('table.deliveries tbody tr')).toHaveCount(2);
  const yann = await api(request, 'GET', '/api/v1/realms/e2e-user/sessions?subject_id=yann');
  expect(yann.body.total_count).toBe(1);
});
