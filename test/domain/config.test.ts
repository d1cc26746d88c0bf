import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, defaultConfigPath, loadConfigFile, validateConfig } from '../../src/config-file.js';
import { configSchema, knownEventTypes } from '../../src/domain/config.js';
import { DEFAULT_FILE, problemAt, problemsOf, rawDefault } from '../helpers/config-problems.js';

// Run from the repository root (as `npm test` does): relative template folders are read from the cwd.

const scratch = mkdtempSync(join(tmpdir(), 'lead-config-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function writeFile(name: string, text: string): string {
  const file = join(scratch, name);
  writeFileSync(file, text);
  return file;
}

describe('config/default.yaml', () => {
  it('loads and validates', () => {
    const loaded = loadConfigFile(DEFAULT_FILE);
    const c = loaded.config;
    assert.deepEqual(c.scoring.models[0]!.thresholds, { mql: 40, sql: 75, minFit: 10 });
    assert.equal(c.scoring.models[0]!.decay?.halfLife, 30 * 86_400_000);
    assert.deepEqual(c.timeouts, {
      mqlStaleAfter: 30 * 86_400_000,
      salesAcceptWithin: 48 * 3_600_000,
      salesEscalations: 1,
      dormantAfter: 180 * 86_400_000,
    });
    assert.equal(c.email.defaultTimezone, 'America/New_York');
    assert.deepEqual(c.email.sendWindow, { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' });
    assert.deepEqual(c.email.frequencyCap, { perDay: 1, perWeek: 3 });
    assert.deepEqual(
      c.nurture.tracks.map((t) => t.id),
      ['welcome', 'mql', 'recycle'],
    );
    assert.equal(c.nurture.tracks[0]!.steps[1]!.after, 3 * 86_400_000);
    assert.equal(c.nurture.tracks[0]!.steps[1]!.skipIfEngagedWithin, 86_400_000);
    assert.equal(c.routing.at(-1)!.when, undefined);
    assert.equal(c.scoring.models[0]!.behavior.demo_request?.handRaiser, true);
    assert.match(loaded.version, /^[0-9a-f]{12}$/);
  });

  it('gives the same version for the same file and another one for another config', () => {
    const a = loadConfigFile(DEFAULT_FILE);
    assert.equal(loadConfigFile(DEFAULT_FILE).version, a.version);
    const raw = rawDefault();
    raw.scoring.thresholds.mql = 41;
    assert.notEqual(validateConfig(raw, 'x.yaml', process.cwd()).version, a.version);
  });

  it('compiles every template a track names, and the handoff template', () => {
    const { config, templates } = loadConfigFile(DEFAULT_FILE);
    for (const id of ['handoff', ...config.nurture.tracks.flatMap((t) => t.steps.map((s) => s.template))]) {
      assert.ok(templates.sources[id], `template ${id}`);
    }
    const welcome = templates.render('welcome', {
      firstName: 'Ada',
      links: { click: 'https://x.example/c', unsubscribe: 'https://x.example/u', open: 'https://x.example/o' },
    });
    assert.equal(welcome.subject, 'Welcome to Acme, Ada');
    assert.match(welcome.text, /https:\/\/x\.example\/u/);
    assert.match(templates.render('welcome', {}).text, /Hi there/);
    assert.throws(() => templates.render('no-such-template', {}), /not found/);
  });

  it('knows the behaviour types and the built-in consent types', () => {
    const types = knownEventTypes(loadConfigFile(DEFAULT_FILE).config);
    for (const t of ['email_open', 'demo_request', 'unsubscribe', 'hard_bounce']) assert.ok(types.includes(t), t);
    assert.ok(!types.includes('nonsense'));
  });

  it('is found through LEAD_CONFIG', () => {
    const before = process.env.LEAD_CONFIG;
    try {
      process.env.LEAD_CONFIG = 'elsewhere/custom.yaml';
      assert.equal(defaultConfigPath(), resolve('elsewhere/custom.yaml'));
      delete process.env.LEAD_CONFIG;
      assert.equal(defaultConfigPath(), resolve('config/default.yaml'));
    } finally {
      if (before === undefined) delete process.env.LEAD_CONFIG;
      else process.env.LEAD_CONFIG = before;
    }
  });
});

describe('a bad configuration', () => {
  it('reports every problem with its path, all at once', () => {
    const raw = rawDefault();
    raw.timeouts.mqlStaleAfter = '3 days';
    raw.nurture.tracks[0].for = ['lead', 'prospect'];
    raw.nurture.tracks[0].steps[1].template = 'no-such-template';
    raw.routing = [raw.routing[0]];
    delete raw.owners; // (the owners of the rules cut above would be problems of their own)
    raw.scoring.thresholds.sql = 30;
    raw.scoring.behavior.unsubscribe = { points: 1 };
    const problems = problemsOf(raw);
    problemAt(problems, 'timeouts.mqlStaleAfter', /"3 days" is not a duration/);
    problemAt(problems, 'nurture.tracks.0.for.1');
    problemAt(problems, 'nurture.tracks.0.steps.1.template', /no-such-template/);
    problemAt(problems, 'routing.0', /catch-all/);
    problemAt(problems, 'scoring.thresholds.sql', /below the mql/);
    problemAt(problems, 'scoring.behavior.unsubscribe', /built-in/);
    assert.equal(problems.length, 6, JSON.stringify(problems, null, 1));
  });

  it('puts every problem in the error message', () => {
    const raw = rawDefault();
    raw.timeouts.dormantAfter = 'soon';
    raw.routing = [{ when: { country: ['US'] }, owners: ['ana@sales.example'] }];
    const err = (() => {
      try {
        validateConfig(raw, 'bad.yaml', process.cwd());
      } catch (e) {
        return e as Error;
      }
    })();
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /invalid configuration bad\.yaml/);
    assert.match(err.message, /timeouts\.dormantAfter: "soon"/);
    assert.match(err.message, /routing\.0: the last routing rule/);
  });

  it('refuses each bad duration, and takes each good one', () => {
    for (const bad of ['3 days', '30', 'P30D', '1y', '']) {
      const raw = rawDefault();
      raw.timeouts.mqlStaleAfter = bad;
      problemAt(problemsOf(raw), 'timeouts.mqlStaleAfter');
    }
    const raw = rawDefault();
    raw.timeouts = { mqlStaleAfter: '500ms', salesAcceptWithin: '2s', dormantAfter: '15m' };
    raw.scoring.decay.halfLife = '48h';
    raw.nurture.tracks[0].steps[1].after = '30d';
    const { config } = validateConfig(raw, 'x.yaml', process.cwd());
    assert.deepEqual(config.timeouts, {
      mqlStaleAfter: 500,
      salesAcceptWithin: 2_000,
      salesEscalations: 0,
      dormantAfter: 900_000,
    });
    assert.equal(config.scoring.models[0]!.decay?.halfLife, 172_800_000);
    assert.equal(config.nurture.tracks[0]!.steps[1]!.after, 30 * 86_400_000);
  });

  it('refuses an unknown stage in a track', () => {
    const raw = rawDefault();
    raw.nurture.tracks[2].for = ['recycled', 'prospect'];
    const problems = problemsOf(raw);
    problemAt(problems, 'nurture.tracks.2.for.1', /Invalid option/);
    assert.equal(problems.length, 1);
  });

  it('refuses a track naming a template that does not exist, with the step path', () => {
    const raw = rawDefault();
    raw.nurture.tracks[0].steps[1].template = 'missing-guide';
    const problems = problemsOf(raw);
    problemAt(problems, 'nurture.tracks.0.steps.1.template', /"missing-guide" not found/);
    assert.equal(problems.length, 1);
  });

  it('refuses routing without a catch-all', () => {
    const raw = rawDefault();
    raw.routing.pop();
    problemAt(problemsOf(raw), 'routing.1', /catch-all/);
    raw.routing = [];
    problemAt(problemsOf(raw), 'routing', /catch-all/);
  });

  it('refuses an sql threshold below the mql threshold, and takes an equal one', () => {
    const raw = rawDefault();
    raw.scoring.thresholds = { mql: 50, sql: 49 };
    problemAt(problemsOf(raw), 'scoring.thresholds.sql', /below the mql/);
    raw.scoring.thresholds = { mql: 50, sql: 50 };
    const { config } = validateConfig(raw, 'x.yaml', process.cwd());
    assert.equal(config.scoring.models[0]!.thresholds.minFit, 0);
  });

  it('refuses the built-in types as behaviour keys', () => {
    const raw = rawDefault();
    raw.scoring.behavior.unsubscribe = { points: 0 };
    raw.scoring.behavior.hard_bounce = { points: -5 };
    const problems = problemsOf(raw);
    problemAt(problems, 'scoring.behavior.unsubscribe', /built-in/);
    problemAt(problems, 'scoring.behavior.hard_bounce', /built-in/);
  });

  it('still reports cross-field problems next to a problem inside one of their entries', () => {
    const raw = rawDefault();
    raw.scoring.behavior.unsubscribe = { points: 1 };
    raw.scoring.behavior.email_open.points = 'one';
    raw.routing = [{ when: { country: ['US'] }, owners: ['not an email'] }];
    raw.scoring.thresholds = { mql: 50, sql: 40, minFit: 1.5 };
    raw.nurture.tracks.push({ id: 'welcome', for: ['lead', 'nowhere'], steps: [{ after: '1d', template: 'welcome' }] });
    const problems = problemsOf(raw);
    problemAt(problems, 'scoring.behavior.email_open.points');
    problemAt(problems, 'scoring.behavior.unsubscribe', /built-in/);
    problemAt(problems, 'routing.0.owners.0');
    problemAt(problems, 'routing.0', /catch-all/);
    problemAt(problems, 'scoring.thresholds.minFit');
    problemAt(problems, 'scoring.thresholds.sql', /below the mql/);
    problemAt(problems, 'nurture.tracks.3.for.1', /Invalid option/);
    problemAt(problems, 'nurture.tracks.3.id', /duplicate track id welcome/);
    problemAt(problems, 'nurture.tracks.3.for.0', /already nurtured by track welcome/);
  });

  it('refuses duplicate track ids and a stage nurtured by two tracks', () => {
    const raw = rawDefault();
    raw.nurture.tracks[1].id = 'welcome';
    raw.nurture.tracks[2].for = ['recycled', 'lead'];
    const problems = problemsOf(raw);
    problemAt(problems, 'nurture.tracks.1.id', /duplicate track id welcome/);
    problemAt(problems, 'nurture.tracks.2.for.1', /already nurtured by track welcome/);
  });

  it('refuses rules with no test, two tests, min above max, a bad pattern or an unknown key', () => {
    const cases: [object, string, RegExp?][] = [
      [{ field: 'seniority', points: 5 }, 'scoring.fit.0', /exactly one/],
      [{ field: 'seniority', in: ['vp'], pattern: 'x', points: 5 }, 'scoring.fit.0', /exactly one/],
      [{ field: 'companySize', min: 100, max: 10, points: 5 }, 'scoring.fit.0.min', /greater than max/],
      [{ field: 'jobTitle', pattern: '(unclosed', points: 5 }, 'scoring.fit.0.pattern', /regular expression/],
      [{ field: 'seniority', in: ['vp'], poinst: 5, points: 5 }, 'scoring.fit.0'],
      [{ field: 'seniority', in: ['vp'], points: 2.5 }, 'scoring.fit.0.points'],
      [{ field: 'seniority', in: [], points: 5 }, 'scoring.fit.0.in'],
      [{ field: 'not a field', in: ['x'], points: 5 }, 'scoring.fit.0.field'],
    ];
    for (const [rule, path, message] of cases) {
      const raw = rawDefault();
      raw.scoring.fit = [rule];
      problemAt(problemsOf(raw), path, message);
    }
    const raw = rawDefault();
    raw.scoring.disqualify = [{ field: 'country', reason: 'no test' }];
    problemAt(problemsOf(raw), 'scoring.disqualify.0', /exactly one/);
  });

  it('refuses a bad send window, time zone, owner, behaviour and unknown keys', () => {
    const cases: [(raw: any) => void, string][] = [
      [
        (r) => {
          r.email.sendWindow = { days: ['mon'], from: '17:00', to: '09:00' };
        },
        'email.sendWindow.to',
      ],
      [
        (r) => {
          r.email.sendWindow = { days: ['monday'], from: '09:00', to: '17:00' };
        },
        'email.sendWindow.days.0',
      ],
      [
        (r) => {
          r.email.sendWindow = { from: '9am', to: '17:00' };
        },
        'email.sendWindow.from',
      ],
      [
        (r) => {
          r.email.defaultTimezone = 'Mars/Olympus_Mons';
        },
        'email.defaultTimezone',
      ],
      [
        (r) => {
          r.routing[2].owners = ['team'];
        },
        'routing.2.owners.0',
      ],
      [
        (r) => {
          r.scoring.behavior.email_open.maxPerDay = 0;
        },
        'scoring.behavior.email_open.maxPerDay',
      ],
      [
        (r) => {
          r.scoring.behavior['Email-Open'] = { points: 1 };
        },
        'scoring.behavior.Email-Open',
      ],
      [
        (r) => {
          r.timeouts.salesEscalations = -1;
        },
        'timeouts.salesEscalations',
      ],
      [
        (r) => {
          r.campaigns['spring-webinar'].cost = -1;
        },
        'campaigns.spring-webinar.cost',
      ],
      [
        (r) => {
          r.email.frequencyCap = { perDay: 0 };
        },
        'email.frequencyCap.perDay',
      ],
      [
        (r) => {
          delete r.timeouts.salesAcceptWithin;
        },
        'timeouts.salesAcceptWithin',
      ],
      [
        (r) => {
          r.nurture.tracks[0].steps = [];
        },
        'nurture.tracks.0.steps',
      ],
      [
        (r) => {
          r.nurture.tracks[0].steps[0].template = 'Welcome.yaml';
        },
        'nurture.tracks.0.steps.0.template',
      ],
    ];
    for (const [mutate, path] of cases) {
      const raw = rawDefault();
      mutate(raw);
      problemAt(problemsOf(raw), path);
    }
    const raw = rawDefault();
    raw.scoring.thresholds.mlq = 40;
    raw.extra = true;
    const problems = problemsOf(raw);
    assert.ok(
      problems.some((p) => p.path === 'scoring.thresholds' && /mlq/.test(p.message)),
      JSON.stringify(problems),
    );
    assert.ok(
      problems.some((p) => p.path === '(root)' && /extra/.test(p.message)),
      JSON.stringify(problems),
    );
  });

  it('fills in the documented defaults', () => {
    const config = configSchema.parse({
      scoring: { thresholds: { mql: 10, sql: 20 }, behavior: { page_view: { points: 1 } } },
      timeouts: { mqlStaleAfter: '1d', salesAcceptWithin: '1h', dormantAfter: '30d' },
      routing: [{ owners: ['team@sales.example'] }],
      email: { from: 'x@y.example' },
    });
    assert.equal(config.scoring.models[0]!.thresholds.minFit, 0);
    assert.deepEqual(config.scoring.models[0]!.fit, []);
    assert.deepEqual(config.scoring.models[0]!.disqualify, []);
    assert.equal(config.scoring.models[0]!.decay, undefined);
    assert.deepEqual(config.nurture, { tracks: [] });
    assert.equal(config.timeouts.salesEscalations, 0);
    assert.equal(config.email.templates, 'templates/');
    assert.equal(config.email.defaultTimezone, 'UTC');
    assert.equal(config.email.sendWindow, undefined);
    assert.equal(config.email.frequencyCap, undefined);
    assert.deepEqual(config.campaigns, {});
  });
});

describe('loadConfigFile', () => {
  it('reports a YAML syntax error with its line', () => {
    const file = writeFile('syntax.yaml', 'scoring:\n  thresholds: { mql: 40, sql: 75\nnurture: [\n');
    assert.throws(
      () => loadConfigFile(file),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.file, file);
        assert.equal(err.problems.length, 1);
        assert.match(err.problems[0]!.path, /^line \d+$/);
        return true;
      },
    );
  });

  it('reports a duplicate key as a YAML error', () => {
    const file = writeFile('dup.yaml', readFileSync(DEFAULT_FILE, 'utf8') + '\ntimeouts: { mqlStaleAfter: 1d }\n');
    assert.throws(
      () => loadConfigFile(file),
      (err: unknown) => err instanceof ConfigError && /^line \d+$/.test(err.problems[0]!.path),
    );
  });

  it('reports a missing file', () => {
    assert.throws(
      () => loadConfigFile(join(scratch, 'nope.yaml')),
      (err: unknown) =>
        err instanceof ConfigError && err.problems[0]!.path === '(file)' && /not found/.test(err.problems[0]!.message),
    );
  });

  it('reports schema problems of a file with their paths', () => {
    const file = writeFile(
      'schema.yaml',
      readFileSync(DEFAULT_FILE, 'utf8').replace('mqlStaleAfter: 30d', 'mqlStaleAfter: 3 days'),
    );
    assert.throws(
      () => loadConfigFile(file),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(
          err.problems.map((p) => p.path),
          ['timeouts.mqlStaleAfter'],
        );
        return true;
      },
    );
  });

  it('reports a missing template folder and a broken template', () => {
    const dir = join(scratch, 'tpl');
    mkdirSync(dir, { recursive: true });
    for (const f of ['handoff', 'welcome', 'case-study', 'webinar-invite', 'pricing-overview', 'come-back']) {
      writeFileSync(join(dir, `${f}.yaml`), readFileSync(`templates/${f}.yaml`, 'utf8'));
    }
    writeFileSync(join(dir, 'guide.yaml'), 'subject: "{{#if x}}unclosed"\nhtml: "<p>x</p>"\ntext: "x"\n');
    writeFileSync(join(dir, 'case-study.yaml'), 'subject: "x"\nhtml: "<p>x</p>"\n');
    // A click link must lead somewhere: the page is named, and is a web page.
    writeFileSync(join(dir, 'come-back.yaml'), 'subject: "x"\nhtml: "<a href=\'{{links.click}}\'>x</a>"\ntext: "x"\n');
    writeFileSync(
      join(dir, 'pricing-overview.yaml'),
      'link: "javascript:alert(1)"\nsubject: "x"\nhtml: "<a href=\'{{links.click}}\'>x</a>"\ntext: "x"\n',
    );
    const raw = rawDefault();
    raw.email.templates = dir;
    const problems = problemsOf(raw);
    problemAt(problems, 'templates/guide.yaml');
    problemAt(problems, 'templates/case-study.yaml: text');
    problemAt(problems, 'templates/come-back.yaml: link', /uses \{\{links\.click\}\}/);
    problemAt(problems, 'templates/pricing-overview.yaml: link', /http\(s\)/);
    // A broken template is reported once, not also as missing.
    assert.ok(!problems.some((p) => p.path === 'nurture.tracks.0.steps.1.template'), JSON.stringify(problems));

    raw.email.templates = join(scratch, 'no-such-folder');
    const missing = problemsOf(raw);
    problemAt(missing, 'email.templates', /not found/);
    problemAt(missing, 'nurture.tracks.0.steps.0.template', /"welcome" not found/);
  });
});

describe('owners: per-owner settings (the handoff mail in their time zone)', () => {
  it('takes a routed owner with an IANA time zone; refuses an unknown zone, a bad address and an owner no rule routes to', () => {
    const ok = rawDefault();
    ok.owners = { 'ana@sales.example': { timezone: 'America/New_York' } };
    assert.deepEqual(problemsOf(ok), []);
    const bad = rawDefault();
    bad.owners = {
      'ana@sales.example': { timezone: 'Mars/Olympus' },
      'zed@sales.example': { timezone: 'UTC' },
      'not-an-address': { timezone: 'UTC' },
      'ben@sales.example': { tz: 'UTC' },
    };
    const problems = problemsOf(bad);
    problemAt(problems, 'owners.ana@sales.example.timezone');
    problemAt(problems, 'owners.zed@sales.example', /in no routing rule/);
    problemAt(problems, 'owners.not-an-address');
    problemAt(problems, 'owners.ben@sales.example');
  });
});
