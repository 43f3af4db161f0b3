// `cxr enqueue` (files, folders, or --orthanc-all): queues films for `cxr worker`, by default at low priority
// (a backfill must not hold up new films). A film already queued, or already done for this model
// and operating point, is not queued again; the counts say how many of each. With --orthanc-all,
// done means its results are in the PACS: a film whose SR or Secondary Capture is missing is queued
// again even when an earlier job for it finished (or a job for its file did).
import { Command, Option } from 'commander';
import * as path from 'node:path';
import { modelIdentity } from '../models/io';
import { loadOrthancConfig, OrthancClient } from '../pacs';
import { modelDirOrDefault } from '../paths';
import { collectInputs } from '../predict/batch';
import { missingError } from '../predict/batch_inputs';
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

export function register(program: Command): void {
  program
    .command('enqueue')
    .description(
      'queue JPEG, PNG or DICOM files (or folders), or every chest film in Orthanc (--orthanc-all), for cxr worker. ' +
        'A film already queued or done (same SOP Instance UID or file bytes, stated age over 10, under 1 or ' +
        'neither, model and operating point) is not queued again; a film in Orthanc counts as done only when ' +
        'its SR and heat map are in Orthanc. Redis: CXR_REDIS_URL or --redis-config.',
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
          const inputs = collectInputs(paths, !!o.recursive);
          for (const dir of inputs.foldersWithImagesBelow)
            log(`hint: ${dir} has sub-folders with images; add -r to include them`);
          counts.skipped = inputs.skipped.length;
          for (const job of inputs.jobs) {
            if (job.missing) {
              log(`${job.file}: ${missingError(job)}`);
              counts.missing++;
              continue;
            }
            try {
              countOutcome(counts, await enqueueFile(queue, spec, job.file));
            } catch (e) {
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
              `${counts.notFilms ? `, ${counts.notFilms} not JPEG, PNG or DICOM` : ''}` +
              ` (queue ${queue.name}: ${depth.waiting} waiting, ${depth.active} running)\n`,
          );
        }
        if (counts.missing || counts.notFilms) process.exitCode = 1;
      } finally {
        await queue.close();
      }
    });
}
