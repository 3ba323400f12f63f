/** Test-only: depends on `configured`. */
import { definePlugin } from '../../../../daemon/plugin-api.js';

export default definePlugin({ name: 'needs_configured', namespaces: ['needs_configured'], dependsOn: ['configured'] });
