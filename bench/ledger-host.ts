/**
 * The bench's lead ledger in a process of its own, as `npm start` hosts it in the stack process:
 * the embedded database of argv[2], migrated, its URL printed as one JSON line; it stops on
 * SIGTERM. (Hosted inside the bench process it would share that process's event loop with the
 * load generator, and every write would wait for it.)
 */
import { openDatabase } from '../src/ledger/database.js';

const db = await openDatabase({ dataDir: process.argv[2]! });
console.log(JSON.stringify({ url: db.url }));
const stop = () => void db.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
