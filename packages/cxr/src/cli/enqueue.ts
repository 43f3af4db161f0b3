// `cxr enqueue` (files, folders, or --orthanc-all): queues films for `cxr worker`, by default at low priority
// (a backfill must not hold up new films). A film already queued, or already done for this model
// and operating point, is not queued again; the counts say how many of each. With --orthanc-all,
// done means its results are in the PACS: a film whose SR or Secondary Capture is missing is queued
// again even when an earlier job for it finished (or a job for its file did).
//
// Files are checked before anything is queued: each one a worker would refuse by its size, leading bytes or last
// bytes (a phone's HEIC, an empty `x.jpg`, a 12-bit JPEG, an animated PNG, a file over the input limit, a JPEG or
// PNG cut short), or cannot read, is named with why and its code, as `cxr predict` names it, rather than vanishing
// into a count or failing hours later on a worker; the others are queued. No file is decoded (data/image_refusal.ts
// reads its header and last bytes, 16 files at once): an archive of tens of thousands of films is checked in the
// time its headers take to read. Files in a folder that are no images by name and bytes (notes.txt) are only
// counted; an empty file without an extension (README) is skipped and named. A folder holding no film at all is
// an error (exit 1), before Redis is asked.
//
// Exit status, as `cxr predict`'s: 0 when every file was queued (or found queued or done already); 2 when some
// were and some were refused; 1 when some were refused and none was taken, when the folders named hold no film,
// and for usage errors or no queue.
import { Command, Option } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_LIMITS } from '../data/decode';
import { type FilmRefusal, fileReader, filmRefusalOf, HEAD_BYTES } from '../data/image_refusal';
import { forEachConcurrent } from '../data/pool';
import { modelIdentity } from '../models/io';
import { FOR_PROCESSING_REASON, LATERAL_REASON, loadOrthancConfig, OrthancClient } from '../pacs';
import { collectInputs } from '../predict/batch';
import { type BatchJob, EMPTY_FILE_RULE, emptySkippedLine, missingError, noFilmsIn } from '../predict/batch_inputs';
import { patientAge } from './predict';
import { checkModelOption } from './model_folder';
import {
  allInstances,
  countOutcome,
  emptyCounts,
  enqueueFileJob,
  enqueueInstance,
  type JobSpec,
  loadRedisUrl,
  NotAFilmError,
  ORTHANC_AGE,
  connectQueue,
  queueDepth,
} from '../queue';

/** Why a file is not queued, in the words and code `cxr predict`'s row gives it. */
interface Refusal {
  reason: string;
  code: 'READ_FAILED' | 'EMPTY' | 'TOO_LARGE' | FilmRefusal['code'];
}

/**
 * Files checked at once: each check is a few reads that wait on the disk (an open, the head, the tail), so
 * the threads of libuv's pool, not the two cores, bound it; more in flight than that only queue.
 */
const CHECKS_AT_ONCE = 16;

/**
 * Why a worker would refuse this file, from cheap checks (its size, leading bytes and last bytes: the checks the
 * reader and decoder make before decoding, decode.ts readImageFile and decodeBuffer), or null when it is queued.
 * Damage elsewhere (a cut-short DICOM, corrupt data) is the worker's to find: telling it needs a decode.
 */
async function refusalOf(job: BatchJob): Promise<Refusal | null> {
  if (job.missing) return { reason: missingError(job), code: 'READ_FAILED' };
  try {
    const st = await fs.promises.stat(job.file);
    // A FIFO named on the command line is never opened: reading it would wait for a writer.
    if (!st.isFile()) return { reason: 'not a regular file', code: 'READ_FAILED' };
    // The worker's limit (readImageFile's), in its words: refused before a byte is read.
    const max = DEFAULT_LIMITS.maxInputBytes;
    if (st.size > max) return { reason: `${st.size} bytes exceeds the ${max}-byte input limit`, code: 'TOO_LARGE' };
    const handle = await fs.promises.open(job.file, 'r');
    try {
      const read = fileReader(handle);
      const head = await read(0, Math.min(HEAD_BYTES, st.size));
      if (head.length === 0) return { reason: 'empty file (0 bytes)', code: 'EMPTY' };
      return await filmRefusalOf(read, st.size, head);
    } finally {
      await handle.close();
    }
  } catch (e) {
    return { reason: `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, code: 'READ_FAILED' };
  }
}

export function register(program: Command): void {
  program
    .command('enqueue')
    .summary('queue films, folders or the whole Orthanc archive for cxr worker')
    .description(
      'queue JPEG, PNG or DICOM files (or folders), or every chest film in Orthanc (--orthanc-all), for cxr worker. ' +
        'A file a worker would refuse (in a folder: any image or file named like one) is named with why and not ' +
        'queued (a JPEG or PNG cut short or over the pixel limit, a file over the byte limit, too); ' +
        `files in a folder that are no images are skipped. ${EMPTY_FILE_RULE} ` +
        'A film already queued or done (same SOP Instance UID or file bytes, stated age over 10, under 1 or ' +
        'neither, model and operating point) is not queued again; a film in Orthanc counts as done only when ' +
        'its SR and heat map are in Orthanc. Redis: CXR_REDIS_URL or --redis-config. ' +
        'Exit status 0 when every file was taken, 2 when some were refused, 1 when none was taken ' +
        '(or no film was found: the folders named hold no JPEG, PNG or DICOM file).',
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
      const model = modelIdentity(path.resolve(checkModelOption(o.model)));
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
      // ownResults: of the skipped, cxr's own SR and Secondary Captures met by --orthanc-all (the archive holds two
      // per film done); said on their own, so that they do not read as films left out. forProcessing: of the
      // skipped, chest images FOR PROCESSING (raw detector data; a modality may send one beside every film): said on
      // their own too, as "not chest films" would puzzle an admin who knows them for chest images. laterals: of the
      // skipped, lateral views (the model reads frontal views only; a PA + lateral exam holds one beside each film).
      const counts = {
        ...emptyCounts(),
        skipped: 0,
        ownResults: 0,
        forProcessing: 0,
        laterals: 0,
        missing: 0,
        notFilms: 0,
      };
      // Each film's job, to be followed with GET /api/v1/jobs/ID: a line each on stderr, and in --json.
      const jobs: ({ id: string; status: string } & ({ file: string } | { orthancInstance: string }))[] = [];
      const said = (job: (typeof jobs)[number]) => {
        jobs.push(job);
        const what = 'file' in job ? job.file : `Orthanc instance ${job.orthancInstance}`;
        log(`${job.status}: ${what}: job ${job.id}`);
      };
      // Files first, before Redis: every refusal is said together, before anything is queued.
      const files: string[] = [];
      if (!o.orthancAll) {
        // imageLike: a folder's HEIC or empty `x.jpg` is checked and named below, not counted as skipped.
        const inputs = collectInputs(paths, !!o.recursive, { imageLike: true });
        for (const dir of inputs.foldersWithImagesBelow)
          log(`hint: ${dir} has sub-folders with images; add -r to include them`);
        for (const note of inputs.notes) log(note);
        for (const file of inputs.emptySkipped) log(emptySkippedLine(file));
        for (const dir of inputs.emptyFolders) log(noFilmsIn(dir, !!o.recursive));
        // Said before Redis is asked, as `cxr predict` says it before the model is loaded: a folder that was
        // meant to hold films and holds none is no success with "0 queued".
        if (inputs.jobs.length === 0) {
          throw new Error(
            `enqueue: nothing to queue in ${paths.join(', ')}` +
              `${inputs.skipped.length ? ` (${inputs.skipped.length} non-image file(s) skipped)` : ''}`,
          );
        }
        counts.skipped = inputs.skipped.length;
        const refusals: (Refusal | null)[] = [];
        await forEachConcurrent(inputs.jobs, CHECKS_AT_ONCE, async (job, i) => {
          refusals[i] = await refusalOf(job);
        });
        // Said and queued in the order the files were found, whichever check ended first.
        inputs.jobs.forEach((job, i) => {
          const refused = refusals[i];
          if (refused === null) {
            files.push(job.file);
            return;
          }
          log(`not queued: ${job.file}: ${refused.reason} (${refused.code})`);
          if (refused.code === 'READ_FAILED') counts.missing++;
          else counts.notFilms++;
        });
      }
      const queue = await connectQueue(redisUrl, model.sha256);
      try {
        if (o.orthancAll) {
          const client = new OrthancClient(loadOrthancConfig({ configFile: o.orthancConfig, warn: log }));
          for await (const id of allInstances(client)) {
            const r = await enqueueInstance(queue, client, spec, id);
            if (r.outcome !== 'skipped') {
              countOutcome(counts, r.outcome);
              // A film whose results are in the PACS already has no job (id null): counted as done, no line.
              if (r.id !== null) said({ id: r.id, status: r.outcome, orthancInstance: id });
            } else {
              counts.skipped++;
              if (r.ownResult) counts.ownResults++;
              else if (r.reason === FOR_PROCESSING_REASON) counts.forProcessing++;
              else if (r.reason === LATERAL_REASON) counts.laterals++;
            }
          }
        } else {
          for (const file of files) {
            try {
              const r = await enqueueFileJob(queue, spec, file);
              countOutcome(counts, r.outcome);
              said({ id: r.id, status: r.outcome, file: path.resolve(file) });
            } catch (e) {
              // Changed since it was checked: still said, and counted with the refused.
              if (!(e instanceof NotAFilmError)) throw e;
              log(e.message);
              counts.notFilms++;
            }
          }
        }
        const depth = await queueDepth(queue);
        if (o.json) process.stdout.write(`${JSON.stringify({ ...counts, queue: queue.name, depth, jobs })}\n`);
        else {
          const own = counts.ownResults;
          const raw = counts.forProcessing;
          const lateral = counts.laterals;
          const others = counts.skipped - own - raw - lateral;
          process.stdout.write(
            `${counts.queued} queued, ${counts.alreadyQueued} already queued, ${counts.alreadyDone} already done` +
              `${counts.requeued ? `, ${counts.requeued} failed before and queued again` : ''}` +
              `${others ? `, ${others} skipped (not chest films or not images)` : ''}` +
              `${own ? `, ${own} cxr result${own === 1 ? '' : 's'} (SR/SC) skipped` : ''}` +
              `${raw ? `, ${raw} image${raw === 1 ? '' : 's'} FOR PROCESSING (raw detector data) skipped` : ''}` +
              `${lateral ? `, ${lateral} lateral view${lateral === 1 ? '' : 's'} skipped` : ''}` +
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
