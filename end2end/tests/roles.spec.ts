import { test, expect, Browser, Page } from '@playwright/test';
import { api, hydrated, signIn } from './helpers';

// Administrators with roles: the admin adds them on the Administrators page; each sees only what
// the role permits, and the server refuses the rest whatever a page sends. The tests run in order.
test.describe.configure({ mode: 'serial' });

const viewer = 'e2e-viewer';
const operator = 'e2e-operator';
const password = 'e2e-roles-password-1';
const newPassword = 'e2e-roles-password-2';
const target = 'e2e-roles-target';

/** A browser context of its own (its own cookie), signed in as `username`. */
async function signedIn(browser: Browser, username: string, pass = password): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, username, pass);
  return page;
}

/** The Administrators page, reached through the navigation. */
async function administrators(page: Page) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Administrators' }).click();
  await expect(page.locator('h1')).toHaveText('Administrators');
  await expect(page.locator('table.admins')).toBeVisible();
  await hydrated(page);
}

async function addAdministrator(page: Page, username: string, role: string) {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.locator('form.create-admin select[name="role"]').selectOption(role);
  await page.getByRole('button', { name: 'Add administrator' }).click();
  await expect(page.getByRole('status')).toHaveText(`Added ${role} '${username}'.`);
  const row = page.locator(`tr[data-admin="${username}"]`);
  await expect(row.getByLabel(`Role of ${username}`)).toHaveValue(role);
  await expect(row).toContainText('enabled');
}

test('an admin adds a viewer and an operator on the Administrators page', async ({ page }) => {
  await signIn(page);
  await expect(page.locator('header .who')).toContainText('Signed in as admin');
  await expect(page.locator('header .badge.role')).toHaveText('admin');
  await administrators(page);
  await addAdministrator(page, viewer, 'viewer');
  await addAdministrator(page, operator, 'operator');
  await expect(page.locator('tr[data-admin="admin"]')).toContainText('you');
  await page.screenshot({ path: '/tmp/roles-admins.png', fullPage: true });
});

test('a viewer sees no control to end sessions, and the server refuses a forged request', async ({ browser, request }) => {
  const created = await api(request, 'POST', '/api/v1/realms/demo/sessions', { subject_id: target, display_name: 'Role Target' });
  expect(created.status).toBe(201);
  const page = await signedIn(browser, viewer);
  await expect(page.locator('header .who')).toContainText(`Signed in as ${viewer}`);
  await expect(page.locator('header .badge.role')).toHaveText('viewer');
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Sessions' })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Administrators' })).toHaveCount(0);
  await expect(nav.getByRole('link', { name: 'API keys' })).toHaveCount(0);
  await expect(page.locator('table.sessions tbody tr').first()).toBeVisible();
  await expect(page.locator('table.sessions input[type="checkbox"]')).toHaveCount(0);
  await expect(page.getByRole('button', { name: /^End / })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'End every session in this realm' })).toHaveCount(0);
  await page.screenshot({ path: '/tmp/roles-viewer-sessions.png', fullPage: true });

  await page.goto(`/?realm=demo&subject_id=${target}`);
  await hydrated(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–1 of 1');
  await expect(page.getByRole('button', { name: /^End / })).toHaveCount(0);

  // What the revoke dialog would send, sent by hand from the viewer's page.
  const forged = await page.evaluate(async (subject) => {
    const resp = await fetch('/api/end_sessions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ realm: 'demo', request: { subject_id: subject } }),
    });
    return { status: resp.status, body: await resp.text() };
  }, target);
  expect(forged.status).toBe(403);
  expect(forged.body).toContain('"code":"forbidden"');
  const still = await api(request, 'GET', `/api/v1/realms/demo/sessions?subject_id=${target}`);
  expect(still.body.total_count).toBe(1);

  // The subject's page and the admin-only pages follow the role too.
  await page.goto(`/realms/demo/users/${target}`);
  await hydrated(page);
  await expect(page.locator('h1')).toContainText(target);
  await expect(page.getByRole('button', { name: /^End / })).toHaveCount(0);
  await page.goto('/admins');
  await expect(page.getByRole('alert')).toContainText('only role admin');
  await expect(page.locator('table.admins')).toHaveCount(0);
});

test('an operator ends sessions but cannot open Administrators', async ({ browser, request }) => {
  const page = await signedIn(browser, operator);
  await expect(page.locator('header .badge.role')).toHaveText('operator');
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Administrators' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'End every session in this realm' })).toBeVisible();
  await page.goto(`/?realm=demo&subject_id=${target}`);
  await hydrated(page);
  await page.getByRole('button', { name: `End all sessions of ${target}` }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByRole('status')).toHaveText('Ended 1 session, 0 clients affected.');
  const gone = await api(request, 'GET', `/api/v1/realms/demo/sessions?subject_id=${target}`);
  expect(gone.body.total_count).toBe(0);
  // Typed in by hand, the admin-only pages say why and offer no form that would be refused.
  await page.goto('/admins');
  await expect(page.getByRole('alert')).toContainText('only role admin');
  await hydrated(page);
  await expect(page.getByRole('button', { name: 'Add administrator' })).toHaveCount(0);
  await page.goto('/api-keys');
  await expect(page.getByRole('alert')).toContainText('only role admin');
  await hydrated(page);
  await expect(page.getByRole('button', { name: 'Create key' })).toHaveCount(0);
});

test('disable, enable, a new password and a new role work, the last admin stays, and each change is audited', async ({ page, browser }) => {
  await signIn(page);
  await administrators(page);
  const viewerRow = page.locator(`tr[data-admin="${viewer}"]`);
  await viewerRow.getByRole('button', { name: `Disable ${viewer}` }).click();
  await expect(page.getByRole('status')).toHaveText(`Disabled '${viewer}' and ended their dashboard sessions.`);
  await expect(viewerRow).toContainText('disabled');

  const refused = await (await browser.newContext()).newPage();
  await refused.goto('/login');
  await hydrated(refused);
  await refused.getByLabel('Username').fill(viewer);
  await refused.getByLabel('Password').fill(password);
  await refused.getByRole('button', { name: 'Sign in' }).click();
  await expect(refused.getByRole('alert')).toBeVisible();
  await expect(refused).toHaveURL(/\/login/);

  await viewerRow.getByRole('button', { name: `Enable ${viewer}` }).click();
  await expect(page.getByRole('status')).toHaveText(`Enabled '${viewer}'.`);
  await expect(viewerRow).toContainText('enabled');

  const operatorRow = page.locator(`tr[data-admin="${operator}"]`);
  await operatorRow.getByLabel(`New password for ${operator}`).fill(newPassword);
  await operatorRow.getByRole('button', { name: `Set password of ${operator}` }).click();
  await expect(page.getByRole('status')).toHaveText(`Set a new password for '${operator}' and ended their other dashboard sessions.`);
  await signedIn(browser, operator, newPassword);

  await viewerRow.getByLabel(`Role of ${viewer}`).selectOption('operator');
  await viewerRow.getByRole('button', { name: 'Change role' }).click();
  await expect(page.getByRole('status')).toHaveText(`'${viewer}' now has role operator.`);

  // The only admin can be neither disabled nor demoted.
  const adminRow = page.locator('tr[data-admin="admin"]');
  await adminRow.getByRole('button', { name: 'Disable admin' }).click();
  await expect(page.getByRole('alert')).toContainText('last enabled administrator');
  await adminRow.getByLabel('Role of admin').selectOption('viewer');
  await adminRow.getByRole('button', { name: 'Change role' }).click();
  await expect(page.getByRole('alert')).toContainText('last enabled administrator');
  await page.reload();
  await hydrated(page);
  await expect(page.locator('tr[data-admin="admin"]').getByLabel('Role of admin')).toHaveValue('admin');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit' }).click();
  await expect(page.locator('h1')).toHaveText('Audit log');
  const rows = page.locator('table.audit tbody tr');
  for (const [action, who] of [
    ['create admin', viewer], ['create admin', operator], ['disable admin', viewer], ['enable admin', viewer],
    ['set admin password', operator], ['set admin role', viewer],
  ]) {
    await expect(rows.filter({ hasText: action }).filter({ hasText: who }).first()).toContainText('admin:admin');
  }
  await expect(rows.filter({ hasText: 'set admin role' }).first()).toContainText('viewer -> operator');
});
