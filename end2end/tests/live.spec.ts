import { test, expect } from '@playwright/test';
import { api, hydrated, signIn } from './helpers';

test('the list shows sessions created since it loaded, and refreshes on request', async ({ page, request }) => {
  expect((await api(request, 'PUT', '/api/v1/realms/e2e-live', {})).status).toBe(200);
  await api(request, 'POST', '/api/v1/realms/e2e-live/sessions', { subject_id: 'first' });
  await signIn(page);
  await page.goto('/?realm=e2e-live');
  await hydrated(page);
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–1 of 1');
  for (const subject of ['second', 'third']) {
    await api(request, 'POST', '/api/v1/realms/e2e-live/sessions', { subject_id: subject });
  }
  const banner = page.locator('.notice.live');
  await expect(banner).toContainText('2 new sessions since this page loaded');
  await page.screenshot({ path: 'test-results/live-banner.png' });
  await banner.getByRole('button', { name: 'Refresh' }).click();
  await expect(page.locator('.pager .summary')).toHaveText('Showing 1–3 of 3');
  await expect(banner).toHaveCount(0);
});
