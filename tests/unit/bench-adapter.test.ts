import { describe, expect, it } from 'vitest';
import { softwareAdapterReason } from '../../bench/adapter';

const base = { vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: false };

describe('softwareAdapterReason (npm run bench:hw)', () => {
  it('refuses SwiftShader, llvmpipe/lavapipe and the fallback adapter', () => {
    expect(softwareAdapterReason({ ...base, vendor: 'google', architecture: 'swiftshader' })).toMatch(
      /swiftshader/,
    );
    expect(softwareAdapterReason({ ...base, description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).toMatch(
      /llvmpipe/,
    );
    expect(softwareAdapterReason({ ...base, vendor: 'mesa', description: 'lavapipe' })).toMatch(/lavapipe/);
    expect(softwareAdapterReason({ ...base, vendor: 'nvidia', isFallbackAdapter: true })).toMatch(
      /fallback/i,
    );
  });
  it('accepts hardware adapters', () => {
    expect(softwareAdapterReason({ ...base, vendor: 'nvidia', architecture: 'hopper' })).toBeNull();
    expect(softwareAdapterReason({ ...base, vendor: 'amd', architecture: 'rdna-3' })).toBeNull();
    expect(softwareAdapterReason({ ...base, vendor: 'intel', architecture: 'xe-lpg' })).toBeNull();
  });
});
