// `cxr enqueue` (files, folders, or --orthanc-all): queues films for `cxr worker`, by default at low priority
// (a backfill must not hold up new films). A film already queued, or already done for this model
// and operating point, is not queued again; the counts say how many of each. With --orthanc-all,
// done means its results are in the PACS: a film whose SR or Secondary Capture is missing is queued
// again even when an earlier job for it finished (or a job for its file did).
//
// Files are checked before anything is queued: each one a worker would refuse by its leading bytes (a phone's
// HEIC, an empty `x.jpg`, a 12-bit JPEG, an animated PNG), or cannot read, is named with why and its code, as
// `cxr predict` names it, rather than vanishing into a count or failing later on a worker; the others are
// queued. Files in a folder that are no images by name and bytes (notes.txt) are only counted.
//
// Exit status, as `cxr predict`'s: 0 when every file was queued (or found queued or done already); 2 when some
// were and some were refused; 1 when some were refused and none was taken, and for usage errors or no queue.
import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { filmRefusal } from '../data/dicom';
import { modelIdentity } from '../models/io';
import { loadOrthancConfig, OrthancClient } from '../pacs';
import { modelDirOrDefault } from '../paths';
import { collectInputs } from '../predict/batch';
import { type BatchJob, missingError } from '../predict/batch_inputs';
import { patientAge } from './predict';
import {
  allInstances,
  countOutcome,
  emptyCounts,
  enqueueFile,
  enqueueInstance,
  type JobSpec,
  loadRedisUrl,
  NotAFilmError,
  ORTHANC_AGE,
  connectQueue,
  queueDepth,
} from '../queue';

/**
 * Leading bytes read to check a file: a JPEG's frame header comes after its APP segments (Exif with its
 * thumbnail, an ICC profile: up to 64 KiB each), a PNG's acTL before its first IDAT. A header past them is
 * not checked here; the worker still refuses such a file, with its reason, in the job's result.
 */
const HEAD_BYTES = 256 * 1024;

/** Why a file is not queued, in the words and code `cxr predict`'s row gives it. */
interface Refusal {
  reason: string;
  code: 'READ_FAILED' | 'EMPTY' | 'UNSUPPORTED_FORMAT';
}

/**
 * Why a worker would refuse this file, from its leading bytes (the checks the decoder makes before decoding:
 * decode.ts decodeBuffer), or null when it is queued. Damage further in (a cut-short file) is the worker's
 * to find: telling it needs the whole file, and a film with bytes after its end marker still decodes.
 */
async function refusalOf(job: BatchJob): Promise<Refusal | null> {
  if (job.missing) return { reason: missingError(job), code: 'READ_FAILED' };
  let head: Buffer;
  try {
    const st = await fs.promises.stat(job.file);
    // A FIFO named on the command line is never opened: reading it would wait for a writer.
    if (!st.isFile()) return { reason: 'not a regular file', code: 'READ_FAILED' };
    const handle = await fs.promises.open(job.file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(HEAD_BYTES, st.size));
      head = buf.subarray(0, (await handle.read(buf, 0, buf.length, 0)).bytesRead);
    } finally {
      await handle.close();
    }
  } catch (e) {
    return { reason: `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, code: 'READ_FAILED' };
  }
  if (head.length === 0) return { reason: 'empty file (0 bytes)', code: 'EMPTY' };
  const refused = filmRefusal(head);
  return refused ? { reason: refused, code: 'UNSUPPORTED_FORMAT' } : null;
}

export function register(program: Command): void {
  program
    .command('enqueue')
    .description(
      'queue JPEG, PNG or DICOM files (or folders), or every chest film in Orthanc (--orthanc-all), for cxr worker. ' +
        'A file a worker would refuse (in a folder: any image or file named like one) is named with why and not ' +
        'queued; files in a folder that are no images are skipped. ' +
        'A film already queued or done (same SOP Instance UID or file bytes, stated age over 10, under 1 or ' +
        'neither, model and operating point) is not queued again; a film in Orthanc counts as done only when ' +
        'its SR and heat map are in Orthanc. Redis: CXR_REDIS_URL or --redis-config. ' +
        'Exit status 0 when every file was taken, 2 when some were refused, 1 when none was taken.',
    )
    .argument('[paths...]', 'files and folders (workers read them by the same absolute path)')
    .option('-r, --recursive', 'descend into sub-folders')
    .option('--orthanc-all', 'every chest film in the Orthanc archive (CXR_ORTHANC_URL or --orthanc-config)')
    .addOption(
      new Option('--priority <priority>', 'low: after every normal job (a backfill); normal: as API jobs')
        .choices(['low', 'normal'])
        .default('low'),
    )
    .option('--model <dir>', 'model folder the workers serve (default: the shipped model, or $CXR_MODEL)')
    .option('--operating-point <name>', "threshold to call PNEUMONIA (default: the model's)")
    .option('--heatmap', 'make a heat map for files too (Orthanc films always get one, for the Secondary Capture)')
    .option(
      '--patient-age <years>',
      "the patient's age, for every file whose header gives none (JPEG, PNG): under 1 or over 10, " +
        'outside-population (not with --orthanc-all: DICOM films in the PACS give their own)',
      patientAge,
    )
    .option('--redis <url>', 'Redis URL (default: $CXR_REDIS_URL; a password here is visible to other users)')
    .option('--redis-config <file>', 'JSON file {"url": "redis://..."} (mode 600)')
    .option('--orthanc-config <file>', 'JSON file {"url", "user", "password"} (mode 600)')
    .option('--json', 'print the counts (and the queue depth) as JSON on stdout')
    .action(async (paths: string[], o) => {
      const log = (l: string) => process.stderr.write(`cxr enqueue: ${l}\n`);
      if (!o.orthancAll && paths.length === 0) throw new Error('enqueue: name files or folders, or --orthanc-all');
      if (o.orthancAll && paths.length > 0) throw new Error('enqueue: give files or --orthanc-all, not both');
      if (o.orthancAll && o.patientAge !== undefined) throw new Error(`enqueue: ${ORTHANC_AGE}`);
      const redisUrl = loadRedisUrl({ url: o.redis, configFile: o.redisConfig, warn: log });
      const model = modelIdentity(path.resolve(modelDirOrDefault(o.model)));
      const operatingPoint: string = o.operatingPoint ?? model.meta.defaultOperatingPoint;
      if (!Object.hasOwn(model.meta.operatingPoints, operatingPoint)) {
        throw new Error(
          `enqueue: unknown operating point '${operatingPoint}' ` +
            `(this model has: ${Object.keys(model.meta.operatingPoints).join(', ')})`,
        );
      }
      const spec: JobSpec = {
        modelSha256: model.sha256,
        operatingPoint,
        heatmap: !!o.heatmap,
        requestedBy: null,
        priority: o.priority,
        ...(o.patientAge !== undefined ? { patientAge: o.patientAge } : {}),
      };
      const counts = { ...emptyCounts(), skipped: 0, missing: 0, notFilms: 0 };
      // Files first, before Redis: every refusal is said together, before anything is queued.
      const files: string[] = [];
      if (!o.orthancAll) {
        // imageLike: a folder's HEIC or empty `x.jpg` is checked and named below, not counted as skipped.
        const inputs = collectInputs(paths, !!o.recursive, { imageLike: true });
        for (const dir of inputs.foldersWithImagesBelow)
          log(`hint: ${dir} has sub-folders with images; add -r to include them`);
        for (const note of inputs.notes) log(note);
        counts.skipped = inputs.skipped.length;
        for (const job of inputs.jobs) {
          const refused = await refusalOf(job);
          if (refused === null) {
            files.push(job.file);
            continue;
          }
          log(`not queued: ${job.file}: ${refused.reason} (${refused.code})`);
          if (refused.code === 'READ_FAILED') counts.missing++;
          else counts.notFilms++;
        }
      }
      const queue = await connectQueue(redisUrl, model.sha256);
      try {
        if (o.orthancAll) {
          const client = new OrthancClient(loadOrthancConfig({ configFile: o.orthancConfig, warn: log }));
          for await (const id of allInstances(client)) {
            const r = (await enqueueInstance(queue, client, spec, id)).outcome;
            if (r === 'skipped') counts.skipped++;
            else countOutcome(counts, r);
          }
        } else {
          for (const file of files) {
            try {
              countOutcome(counts, await enqueueFile(queue, spec, file));
            } catch (e) {
              // Changed since it was checked: still said, and counted with the refused.
              if (!(e instanceof NotAFilmError)) throw e;
              log(e.message);
              counts.notFilms++;
            }
          }
        }
        const depth = await queueDepth(queue);
        if (o.json) process.stdout.write(`${JSON.stringify({ ...counts, queue: queue.name, depth })}\n`);
        else {
          process.stdout.write(
            `${counts.queued} queued, ${counts.alreadyQueued} already queued, ${counts.alreadyDone} already done` +
              `${counts.requeued ? `, ${counts.requeued} failed before and queued again` : ''}` +
              `${counts.skipped ? `, ${counts.skipped} skipped (not chest films or not images)` : ''}` +
              `${counts.missing ? `, ${counts.missing} missing or unreadable` : ''}` +
              `${counts.notFilms ? `, ${counts.notFilms} refused (named above)` : ''}` +
              ` (queue ${queue.name}: ${depth.waiting} waiting, ${depth.active} running)\n`,
          );
        }
        const taken = counts.queued + counts.alreadyQueued + counts.alreadyDone + counts.requeued;
        if (counts.missing || counts.notFilms) process.exitCode = taken > 0 ? 2 : 1;
      } finally {
        await queue.close();
      }
    });
}
