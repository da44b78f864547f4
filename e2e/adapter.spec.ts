import { expect, test } from '@playwright/test';

test('page shows adapter info and passes the encode check', async ({ page }) => {
  await page.goto('/');
  const info = page.getByTestId('adapter-info');
  await expect(info).toContainText('architecture');
  await expect(info).not.toBeEmpty();
  await page.getByRole('button', { name: 'Run encode check' }).click();
  await expect(page.getByTestId('selfcheck')).toContainText('PASS');
  await page.screenshot({ path: 'test-results/screens/adapter.png', fullPage: true });
});
