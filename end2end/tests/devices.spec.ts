import { test, expect } from '@playwright/test';
import { api, hydrated, signIn } from './helpers';

const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';
const IPAD = 'Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1';

test('the device column, the device filters and ending every phone session with a preview', async ({ page, request }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-dev', {})).status).toBe(200);
  for (const [subject, ua] of [['ana', FIREFOX], ['ben', IPHONE], ['cai', IPAD], ['dee', IPHONE], ['eve', FIREFOX]]) {
    expect((await api(request, 'POST', '/api/v1/realms/e2e-dev/sessions', { subject_id: subject, user_agent: ua })).status).toBe(201);
  }
  await signIn(page);
  await page.goto('/?realm=e2e-dev');
  await hydrated(page);
  const row = (subject: string) => page.locator('table.sessions tr', { hasText: subject });
  await expect(row('ana').locator('td.device')).toHaveText('Desktop: Firefox 133 on Windows');
  await expect(row('cai').locator('td.device')).toHaveText('Tablet: Safari 17 on iPadOS');
  // The raw user agent is on hover.
  await expect(row('ben').locator('.device-label')).toHaveAttribute('title', IPHONE);
  await page.screenshot({ path: 'test-results/devices-column.png', fullPage: true });

  await page.getByLabel('Device type').selectOption('phone');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–2 of 2');
  await hydrated(page);
  expect(page.url()).toContain('device_type=phone');
  await expect(page.locator('table.sessions')).not.toContainText('cai');
  await expect(page.getByLabel('Device type')).toHaveValue('phone');
  await page.screenshot({ path: 'test-results/devices-filtered.png', fullPage: true });

  await page.getByRole('button', { name: 'End all 2 matching' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.locator('h2')).toContainText('device_type=phone');
  await dialog.getByLabel('Reason').fill('lost phones');
  await dialog.getByRole('button', { name: 'Preview' }).click();
  await expect(dialog.locator('[data-preview]')).toHaveText('Would end 2 sessions, 0 clients affected.');
  expect((await api(request, 'GET', '/api/v1/realms/e2e-dev')).body.session_count).toBe(5);
  await dialog.getByRole('button', { name: 'Confirm' }).click();
  await expect(page.getByRole('status')).toHaveText('Ended 2 sessions, 0 clients affected.');
  const left = await api(request, 'GET', '/api/v1/realms/e2e-dev/sessions');
  expect(left.body.total_count).toBe(3);
  expect(left.body.results.every((s: any) => s.device.type !== 'phone')).toBe(true);

  // Browser and OS together.
  await page.goto('/?realm=e2e-dev&browser=firefox&os=windows');
  await hydrated(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–2 of 2');
  await expect(page.getByLabel('Browser')).toHaveValue('firefox');
});

test('an unknown device filter value says which filter is wrong', async ({ page }) => {
  await signIn(page);
  await page.goto('/?realm=demo&browser=netscape');
  await expect(page.getByRole('alert')).toContainText('browser');
});
