import { test, expect } from '@playwright/test';
import { api, hydrated, signIn } from './helpers';

test('a session has its own page, and can be ended from it', async ({ page, request }) => {
  const created = await api(request, 'POST', '/api/v1/realms/demo/sessions', {
    subject_id: 'e2e-detail', display_name: 'Detail Person', client_ids: ['portal', 'mail'], ip: '198.51.100.7',
  });
  await signIn(page);
  await page.getByLabel('Subject').fill('e2e-detail');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.locator('table.sessions tbody tr').first().locator('a[href^="/sessions/"]').click();
  await expect(page).toHaveURL(new RegExp(`/sessions/demo/${created.body.sid}$`));
  await expect(page.locator('h1')).toHaveText('Detail Person');
  await expect(page.getByText('198.51.100.7')).toBeVisible();
  await page.screenshot({ path: 'test-results/session-detail.png', fullPage: true });
  await page.getByRole('button', { name: 'End this session' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByRole('status')).toHaveText('Ended 1 session, 2 clients affected.');
  const gone = await api(request, 'GET', `/api/v1/realms/demo/sessions/${created.body.sid}`);
  expect(gone.status).toBe(404);
});

test('end every session of a subject, then every session of a realm with a typed confirmation', async ({ page, request }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-wipe', {})).status).toBe(200);
  for (const subject of ['s1', 's1', 's2']) {
    await api(request, 'POST', '/api/v1/realms/e2e-wipe/sessions', { subject_id: subject });
  }
  await signIn(page);
  await page.goto('/?realm=e2e-wipe&subject_id=s1');
  await hydrated(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–2 of 2');
  await page.getByRole('button', { name: 'End all sessions of s1' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByRole('status')).toHaveText('Ended 2 sessions, 0 clients affected.');

  await page.goto('/?realm=e2e-wipe');
  await hydrated(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–1 of 1');
  await page.getByRole('button', { name: 'End every session in this realm' }).click();
  const dialog = page.getByRole('dialog');
  const confirm = dialog.getByRole('button', { name: 'Confirm' });
  await expect(confirm).toBeDisabled();
  await dialog.getByLabel("Type the realm's name to confirm").fill('e2e-wip');
  await expect(confirm).toBeDisabled();
  await dialog.getByLabel("Type the realm's name to confirm").fill('e2e-wipe');
  await page.screenshot({ path: 'test-results/realm-sign-out.png' });
  await confirm.click();
  await expect(page.getByRole('status')).toHaveText('Ended 1 session, 0 clients affected.');
  const realm = await api(request, 'GET', '/api/v1/realms/e2e-wipe');
  expect(realm.body.session_count).toBe(0);
});

test('the audit page shows who did what and why', async ({ page, request }) => {
  await api(request, 'POST', '/api/v1/realms/demo/sessions/end', { subject_id: 'nobody-at-all', reason: 'e2e audit check' });
  await signIn(page);
  await page.getByRole('link', { name: 'Audit' }).click();
  await expect(page.locator('h1')).toHaveText('Audit log');
  // Newest first: the removal, or the sign-in that followed it.
  const row = page.locator('table.audit tbody tr').filter({ hasText: 'e2e audit check' }).first();
  await expect(row).toContainText('api-key:bootstrap');
  await expect(row).toContainText('e2e audit check');
  await page.screenshot({ path: 'test-results/audit.png', fullPage: true });
});

test('the clients page counts sessions per client and links to them', async ({ page, request }) => {
  const reg = await api(request, 'PUT', '/api/v1/realms/demo/clients/portal', {
    name: 'Customer portal', backchannel_logout_uri: 'http://127.0.0.1:9/backchannel', backchannel_logout_session_required: true,
  });
  expect(reg.status).toBe(200);
  await signIn(page);
  await page.getByRole('link', { name: 'Clients' }).click();
  const row = page.locator('table.clients tbody tr').filter({ hasText: 'Customer portal' });
  const count = reg.body.session_count.toLocaleString('en-US');
  await expect(row.getByRole('link')).toHaveText(`${count} sessions`);
  await page.screenshot({ path: 'test-results/clients.png' });
  await row.getByRole('link').click();
  await expect(page).toHaveURL(/client_id=portal/);
  await expect(page.locator('.pager .summary')).toContainText(`of ${count}`);
});
