import { test, expect } from '@playwright/test';
import { baseURL } from '../playwright.config';
import { hydrated, signIn } from './helpers';

test('a form on another site cannot make the dashboard sign out', async ({ page }) => {
  await signIn(page);
  // A page of another origin with a form that posts to the sign-out server function.
  await page.route('http://attacker.test/**', (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><form id="f" method="POST" action="${baseURL}/api/sign_out"></form>
             <script>document.getElementById('f').submit()</script>`,
    }),
  );
  const refused = page.waitForResponse((r) => r.url() === `${baseURL}/api/sign_out`);
  await page.goto('http://attacker.test/');
  const response = await refused;
  expect(response.status()).toBe(403);
  expect(await response.json()).toMatchObject({ error: { code: 'cross_origin_request' } });
  // Still signed in.
  await page.goto('/');
  await hydrated(page);
  await expect(page.locator('header .who')).toContainText('Signed in as admin');
});

test('the dashboard runs under its content security policy without violations', async ({ page }) => {
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) violations.push(m.text());
  });
  await signIn(page);
  await page.goto('/api-keys');
  await hydrated(page);
  expect(violations).toEqual([]);
});

test('API keys are created, shown once and revoked from the dashboard', async ({ page, request }) => {
  await signIn(page);
  await page.goto('/api-keys');
  await hydrated(page);
  await expect(page.locator('table.api-keys')).toContainText('bootstrap');
  await page.getByLabel('Name').fill('e2e-idp');
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = (await page.locator('code.secret').textContent())!.trim();
  expect(secret).toMatch(/^sk_/);
  await expect(page.locator('table.api-keys')).toContainText('e2e-idp');
  await page.screenshot({ path: 'test-results/api-keys.png', fullPage: true });
  // The key works at once for the data plane...
  const ok = await request.fetch('/api/v1/realms/demo/sessions/validate', {
    method: 'POST',
    data: JSON.stringify({ token: 'no-such-token' }),
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
  });
  expect(ok.status()).toBe(200);
  // ...and is refused at once after it is revoked.
  await page.getByRole('button', { name: 'Revoke e2e-idp' }).click();
  await expect(page.locator('table.api-keys')).not.toContainText('e2e-idp');
  const refused = await request.fetch('/api/v1/realms/demo/sessions/validate', {
    method: 'POST',
    data: JSON.stringify({ token: 'no-such-token' }),
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
  });
  expect(refused.status()).toBe(401);
});
