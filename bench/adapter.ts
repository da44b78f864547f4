import type { AdapterReport } from '../src/gpu/device';

/**
 * Why an adapter is not a real GPU (SwiftShader, another software rasterizer, or the fallback adapter),
 * or null when it looks like hardware.
 */
export function softwareAdapterReason(
  a: Pick<AdapterReport, 'vendor' | 'architecture' | 'device' | 'description' | 'isFallbackAdapter'>,
): string | null {
  const text = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ');
  const m = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render driver/i.exec(text);
  if (m) return `is ${m[0]} (${text})`;
  if (a.isFallbackAdapter) return `is the fallback adapter (${text || 'no name'})`;
  return null;
}
