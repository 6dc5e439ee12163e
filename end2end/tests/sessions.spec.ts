import { test, expect } from '@playwright/test';
import { api, hydrated, signIn } from './helpers';

const firstSid = (page) => page.locator('table.sessions tbody tr').first().locator('td.sid a[title]').getAttribute('title');

test('a wrong password is refused with a message', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong username or password.');
  await page.screenshot({ path: 'test-results/sign-in-refused.png' });
});

test('first page renders on the server and hydrates', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page);
  await expect(page.locator('table.sessions tbody tr')).toHaveCount(25);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–25 of 3,000');
  await page.screenshot({ path: 'test-results/sessions-first-page.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('next and previous land on the same rows', async ({ page }) => {
  await signIn(page);
  const page1 = await firstSid(page);
  await page.getByRole('link', { name: 'Next' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 26–50 of 3,000');
  const page2 = await firstSid(page);
  expect(page2).not.toEqual(page1);
  await page.getByRole('link', { name: 'Previous' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–25 of 3,000');
  expect(await firstSid(page)).toEqual(page1);
});

test('search by subject, select rows and end them with chosen flags', async ({ page, request }) => {
  for (let i = 0; i < 3; i++) {
    const r = await api(request, 'POST', '/api/v1/realms/demo/sessions', {
      subject_id: 'e2e-victim', display_name: `Victim Number${i}`, client_ids: ['victim-app'],
    });
    expect(r.status).toBe(201);
  }
  await signIn(page);
  await page.getByLabel('Subject').fill('e2e-victim');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–3 of 3');
  await expect(page).toHaveURL(/subject_id=e2e-victim/);
  // Only what was asked for, no empty fields (and no stray `&=`).
  expect(new URL(page.url()).search).toBe('?realm=demo&subject_id=e2e-victim&count=25&sort=created');

  const rows = page.locator('table.sessions tbody tr');
  await rows.nth(0).getByRole('checkbox').check();
  await rows.nth(1).getByRole('checkbox').check();
  await page.getByRole('button', { name: 'End selected (2)' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  await dialog.getByLabel('Revoke consents').uncheck();
  await dialog.getByLabel('Reason').fill('e2e: suspicious sign-ins');
  await dialog.getByRole('button', { name: 'Preview' }).click();
  await expect(dialog.locator('[data-preview]')).toHaveText('Would end 2 sessions, 1 client affected.');
  await page.screenshot({ path: 'test-results/revoke-dialog.png' });
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('status')).toHaveText('Ended 2 sessions, 1 client affected.');
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–1 of 1');
  await page.screenshot({ path: 'test-results/after-revoke.png', fullPage: true });

  const left = await api(request, 'GET', '/api/v1/realms/demo/sessions?subject_id=e2e-victim');
  expect(left.body.total_count).toBe(1);
  const audit = await api(request, 'GET', '/api/v1/audit?count=1');
  expect(audit.body.results[0].actor).toBe('admin:admin');
  expect(audit.body.results[0].reason).toBe('e2e: suspicious sign-ins');
});

test('the own session row cannot be selected', async ({ page }) => {
  await signIn(page);
  await page.getByLabel('Realm').selectOption('_admin');
  const own = page.locator('table.sessions tbody tr.own');
  await expect(own).toHaveCount(1);
  await expect(own.getByText('this session')).toBeVisible();
  await expect(own.getByRole('checkbox')).toBeDisabled();
  await page.screenshot({ path: 'test-results/own-session.png' });
});

test('a display name holding markup renders as text', async ({ page, request }) => {
  const name = '<script>window.pwned=1</script> Mallory';
  const r = await api(request, 'POST', '/api/v1/realms/demo/sessions', { subject_id: 'e2e-xss', display_name: name });
  expect(r.status).toBe(201);
  await signIn(page);
  await page.getByLabel('Subject').fill('e2e-xss');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator('table.sessions tbody td.name').first()).toContainText(name);
  expect(await page.evaluate(() => (window as any).pwned)).toBeUndefined();
});

test('the sessions page fits a phone screen', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await signIn(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: 'test-results/phone.png', fullPage: false });
});

test('session ids show the part that tells them apart, whole in the title, with a copy button', async ({ page, request, context }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-ids', {})).status).toBe(200);
  // Created within the same second: time-ordered (UUIDv7) ids that begin alike.
  const sids: string[] = [];
  for (const name of ['Id One', 'Id Two']) {
    const r = await api(request, 'POST', '/api/v1/realms/e2e-ids/sessions', { subject_id: 'same-second', display_name: name });
    expect(r.status).toBe(201);
    sids.push(r.body.sid);
  }
  await signIn(page);
  await page.goto('/?realm=e2e-ids');
  await hydrated(page);
  const cells = page.locator('table.sessions tbody td.sid');
  await expect(cells).toHaveCount(2);
  const shown = await cells.locator('a code').allTextContents();
  expect(new Set(shown).size).toBe(2);
  const titles: string[] = [];
  for (let i = 0; i < 2; i++) {
    const link = cells.nth(i).locator('a');
    const sid = (await link.getAttribute('title'))!;
    titles.push(sid);
    expect(shown[i]).toBe(`…${sid.slice(-8)}`);
    expect(await link.getAttribute('href')).toBe(`/sessions/e2e-ids/${sid}`);
    await expect(cells.nth(i).getByRole('button', { name: `Copy session ID …${sid.slice(-8)}` })).toBeVisible();
  }
  expect([...titles].sort()).toEqual([...sids].sort());
  await page.screenshot({ path: 'test-results/session-ids.png' });

  // The button copies the whole id.
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const copy = cells.first().getByRole('button', { name: /^Copy session ID/ });
  await copy.click();
  await expect(copy).toHaveAttribute('title', 'Copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(titles[0]);
});
