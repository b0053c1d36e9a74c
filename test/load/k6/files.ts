/**
 * k6 scenario "files": startFileUpload → uploadFileChunk × n → fileStatus → downloadFileChunk × n → deleteFile → delete.
 * Build: pnpm bench:k6-check --build-only   Run: k6 run -e RELAY_URL=https://staging.example dist/files.js
 */
import { iterate, scenarioOptions } from './lib/driver.js';

export const options = scenarioOptions('files');

export default function (): void {
  iterate('files');
}
