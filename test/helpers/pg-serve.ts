/** A throwaway PostgreSQL server for manual runs (e.g. `npm run bench` with DATABASE_URL): prints its URL, stops on SIGINT/SIGTERM. */
import { startPostgres } from './postgres.js';

const pg = await startPostgres();
console.log(pg.url);
const stop = () => void pg.stop().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
