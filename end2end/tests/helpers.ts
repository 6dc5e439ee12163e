import { expect, Page, APIRequestContext } from '@playwright/test';
import { apiKey, adminPassword } from '../playwright.config';

/** Waits until the page has hydrated. */
export async function hydrated(page: Page) {
  await expect(page.locator('header.topbar')).toHaveAttribute('data-hydrated', 'true');
}

/** Signs in (as the administrator `admin` unless told otherwise) and lands on the sessions page. */
export async function signIn(page: Page, username = 'admin', password = adminPassword) {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('h1')).toHaveText('Sessions');
  await expect(page.locator('table.sessions')).toBeVisible();
  await hydrated(page);
}

/** Calls the JSON API with the bootstrap key. */
export async function api(request: APIRequestContext, method: string, path: string, data?: unknown) {
  const resp = await request.fetch(path, {
    method,
    data: data === undefined ? undefined : JSON.stringify(data),
    headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
  });
  return { status: resp.status(), body: await resp.json() };
}
