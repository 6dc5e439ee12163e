import { test, expect } from '@playwright/test';
import { adminPassword, baseURL } from '../playwright.config';
import { api, hydrated, signIn } from './helpers';

async function fillSignIn(page) {
  await hydrated(page);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(adminPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('a signed-out visit goes to sign-in, then back to the page it asked for', async ({ page, request }) => {
  // The server answers with the redirect itself, before sending any of the page.
  const direct = await request.get('/audit?before=5', { maxRedirects: 0, headers: { accept: 'text/html' } });
  expect(direct.status()).toBe(302);
  expect(direct.headers()['location']).toBe('/login?next=%2Faudit%3Fbefore%3D5');

  await page.goto('/?realm=demo&subject_id=nobody-here');
  await expect(page).toHaveURL(`${baseURL}/login?next=%2F%3Frealm%3Ddemo%26subject_id%3Dnobody-here`);
  await expect(page.locator('h1')).toHaveText('Sign in');
  await page.screenshot({ path: 'test-results/signed-out.png' });
  await fillSignIn(page);
  await expect(page).toHaveURL(`${baseURL}/?realm=demo&subject_id=nobody-here`);
  await expect(page.locator('h1')).toHaveText('Sessions');
  await expect(page.getByLabel('Subject')).toHaveValue('nobody-here');
  await expect(page.locator('.notice.empty')).toHaveText('No active session found matching these filters.');
  await expect(page.locator('header .who')).toContainText('Signed in as admin');
});

test('sign-in goes back only to pages of this site', async ({ page, request }) => {
  for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
    await page.context().clearCookies();
    await page.goto(`/login?next=${encodeURIComponent(next)}`);
    await fillSignIn(page);
    await expect(page).toHaveURL(`${baseURL}/`);
    await expect(page.locator('table.sessions')).toBeVisible();
  }
  // Without the browser's help too: the server function itself redirects to `/`.
  const resp = await request.post('/api/sign_in', {
    form: { username: 'admin', password: adminPassword, next: '//evil.example/' },
    headers: { origin: baseURL, 'sec-fetch-site': 'same-origin', accept: 'text/html' },
    maxRedirects: 0,
  });
  expect(resp.status()).toBe(302);
  expect(resp.headers()['location']).toBe('/');
});

test('the realm picker switches the realm at once, URL included', async ({ page, request }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-pick', {})).status).toBe(200);
  for (const name of ['Picked One', 'Picked Two']) {
    await api(request, 'POST', '/api/v1/realms/e2e-pick/sessions', { subject_id: 'picked', display_name: name });
  }
  await signIn(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–25 of 3,000');
  // While the other realm loads, the rows on screen (still demo's) cannot be acted on.
  await page.route('**/api/load_sessions*', async (route) => {
    await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  await page.getByLabel('Realm').selectOption('e2e-pick');
  await expect(page.locator('.loaded')).toHaveAttribute('aria-busy', 'true');
  await expect(page.locator('.loaded')).toHaveAttribute('inert', '');
  await page.screenshot({ path: 'test-results/realm-switching.png' });
  await expect(page).toHaveURL(`${baseURL}/?realm=e2e-pick`);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–2 of 2');
  await expect(page.locator('.loaded')).toHaveAttribute('aria-busy', 'false');
  await expect(page.locator('table.sessions tbody td.name')).toHaveText(['Picked Two', 'Picked One']);
  await expect(page.getByLabel('Realm')).toHaveValue('e2e-pick');
  await page.screenshot({ path: 'test-results/realm-switched.png', fullPage: true });
  // Back is the previous realm again, picker and rows alike.
  await page.goBack();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–25 of 3,000');
  await expect(page.getByLabel('Realm')).toHaveValue('demo');
});

test('disabled Previous / Next are not links: the keyboard skips them', async ({ page }) => {
  await signIn(page);
  const pager = page.locator('.pager');
  const summary = pager.locator('.summary');
  await expect(pager.getByRole('link')).toHaveText(['Next']);
  await expect(pager.getByText('Previous')).toHaveAttribute('aria-disabled', 'true');
  // From the last row's last control (its session ID's copy button), Tab goes straight to Next;
  // Enter follows it.
  await page.locator('table.sessions tbody tr').last().locator('td.sid button.copy').focus();
  await page.keyboard.press('Tab');
  await expect(pager.getByRole('link', { name: 'Next' })).toBeFocused();
  await page.screenshot({ path: 'test-results/pager-first-page.png' });
  await page.keyboard.press('Enter');
  await expect(summary).toHaveText('Showing 26–50 of 3,000');
  // Now both are links: Shift+Tab from Next reaches Previous, Enter goes back.
  await expect(pager.getByRole('link')).toHaveText(['Previous', 'Next']);
  await pager.getByRole('link', { name: 'Next' }).focus();
  await page.keyboard.press('Shift+Tab');
  await expect(pager.getByRole('link', { name: 'Previous' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(summary).toHaveText('Showing 1–25 of 3,000');
});

test('the last page has no Next link', async ({ page, request }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-few', {})).status).toBe(200);
  for (let i = 0; i < 3; i++) {
    await api(request, 'POST', '/api/v1/realms/e2e-few/sessions', { subject_id: `few-${i}` });
  }
  await signIn(page);
  await page.goto('/?realm=e2e-few&count=10');
  await hydrated(page);
  const pager = page.locator('.pager');
  await expect(pager.locator('.summary')).toHaveText('Showing 1–3 of 3');
  await expect(pager.getByRole('link')).toHaveCount(0);
  await expect(pager.locator('[aria-disabled="true"]')).toHaveText(['Previous', 'Next']);
  await page.locator('table.sessions tbody tr').last().locator('td.sid button.copy').focus();
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.closest('.pager') !== null);
  expect(focused).toBe(false);
});

test('times render the same on the server and after hydration', async ({ page, request }) => {
  // Sessions that expire within seconds: between the server's render and a late hydration they
  // cross "expired", which a clock read while rendering would show differently.
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-clock', { idle_timeout_secs: 4 })).status).toBe(200);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await signIn(page);
  await api(request, 'POST', '/api/v1/realms/e2e-clock/sessions', { subject_id: 'ticking' });
  await page.route('**/pkg/*.wasm', async (route) => {
    await new Promise((r) => setTimeout(r, 6000));
    await route.continue();
  });
  const response = await page.goto('/?realm=e2e-clock');
  const html = await response!.text();
  const serverTimes = [...html.matchAll(/<time[^>]*>(.*?)<\/time>/g)].map((m) => m[1].replace(/<!--.*?-->|<!>/g, ''));
  expect(serverTimes.length).toBe(3);
  expect(html).not.toContain('>expired<');
  await hydrated(page);
  await expect(page.locator('table.sessions time')).toHaveText(serverTimes);
  await expect(page.locator('table.sessions .badge')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('a server function error is shown by the page, typed, with its message', async ({ page }) => {
  await signIn(page);
  await page.goto('/?realm=no-such-realm');
  await hydrated(page);
  await expect(page.getByRole('alert')).toHaveText(
    "realm 'no-such-realm' does not exist; create it first with PUT /api/v1/realms/no-such-realm");
  await page.screenshot({ path: 'test-results/error-boundary.png' });
  // Another page replaces the error.
  await page.getByRole('link', { name: 'Audit' }).click();
  await expect(page.locator('table.audit')).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);
});

test('an unknown address is a page-not-found page, status 404, with a link back to the sessions', async ({ page, request }) => {
  for (const path of ['/no/such/page', '/realms/demo/sessions']) {
    const direct = await request.get(path, { headers: { accept: 'text/html' } });
    expect(direct.status()).toBe(404);
    expect(direct.headers()['content-type']).toContain('text/html');
    expect(await direct.text()).toContain('Page not found');
  }
  await signIn(page);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const resp = await page.goto('/realms/demo/sessions');
  expect(resp!.status()).toBe(404);
  await hydrated(page);
  await expect(page.locator('h1')).toHaveText('Page not found');
  await expect(page.locator('.not-found code')).toHaveText('/realms/demo/sessions');
  await expect(page.locator('header .who')).toContainText('Signed in as admin');
  await page.screenshot({ path: 'test-results/not-found.png' });
  await page.getByRole('link', { name: 'Back to the sessions' }).click();
  await expect(page).toHaveURL(`${baseURL}/`);
  await expect(page.locator('h1')).toHaveText('Sessions');
  await expect(page.locator('table.sessions')).toBeVisible();
  expect(errors).toEqual([]);
});
