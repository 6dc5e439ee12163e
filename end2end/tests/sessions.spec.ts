import { test, expect, Page } from '@playwright/test';

async function hydrated(page: Page) {
  await expect(page.locator('header.topbar')).toHaveAttribute('data-hydrated', 'true');
}

test('first page renders on the server and hydrates', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/');
  await expect(page.locator('h1')).toHaveText('Sessions');
  await hydrated(page);
  const rows = page.locator('table.sessions tbody tr');
  await expect(rows).toHaveCount(25);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–25 of 3,000');
  await page.screenshot({ path: 'test-results/sessions-first-page.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('next and previous land on the same rows', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  const firstSid = async () => page.locator('table.sessions tbody tr').first().locator('td code[title]').getAttribute('title');
  const page1 = await firstSid();
  await page.getByRole('link', { name: 'Next' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 26–50 of 3,000');
  const page2 = await firstSid();
  expect(page2).not.toEqual(page1);
  await page.getByRole('link', { name: 'Previous' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–25 of 3,000');
  expect(await firstSid()).toEqual(page1);
});
