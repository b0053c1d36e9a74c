/**
 * k6 scenario "messaging": each VU holds a session and loops upload → count → download → delete (1 KiB data).
 * Build: pnpm bench:k6-check --build-only   Run: k6 run -e RELAY_URL=https://staging.example dist/messaging.js
 */
import { iterate, scenarioOptions } from './lib/driver.js';

export const options = scenarioOptions('messaging');

export default function (): void {
  iterate('messaging');
}
