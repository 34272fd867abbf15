/**
 * Every identifier the extension shares with the language server (docs/lsp.md) and
 * the ids of its own input-first commands. The server registers its ids itself through
 * vscode-languageclient; the extension never registers them again (that would throw).
 */

export const SERVER_COMMANDS = {
  run: "channelcoder.run",
  ask: "channelcoder.ask",
  fix: "channelcoder.fix",
  cancel: "channelcoder.cancel",
  jobs: "channelcoder.jobs",
  applyProposal: "channelcoder.applyProposal",
  rejectProposal: "channelcoder.rejectProposal",
  buildImage: "channelcoder.buildImage",
  doctor: "channelcoder.doctor",
  sessions: "channelcoder.sessions",
  resetSession: "channelcoder.resetSession",
} as const;

export type ServerCommand = (typeof SERVER_COMMANDS)[keyof typeof SERVER_COMMANDS];

/** Server commands that start a job: they get a client-chosen jobId/workDoneToken and one progress UI. */
export const JOB_COMMANDS: ReadonlySet<string> = new Set<string>([
  SERVER_COMMANDS.run,
  SERVER_COMMANDS.ask,
  SERVER_COMMANDS.fix,
  SERVER_COMMANDS.buildImage,
  SERVER_COMMANDS.rejectProposal,
]);

/**
 * Job commands the server cancels through `$/cancelRequest` rather than the progress token
 * (docs/lsp.md: the progress cancel reaches jobs; an image build is not a job).
 */
export const CANCEL_BY_REQUEST: ReadonlySet<string> = new Set<string>([SERVER_COMMANDS.buildImage]);

/** The extension's own commands: they ask for input (or pick a job) first, then call the server. */
export const CLIENT_COMMANDS = {
  ask: "channelcoder.ui.ask",
  run: "channelcoder.ui.run",
  fix: "channelcoder.ui.fix",
  explain: "channelcoder.ui.explain",
  cancel: "channelcoder.ui.cancel",
  jobs: "channelcoder.ui.jobs",
  rejectProposal: "channelcoder.ui.rejectProposal",
  showTranscript: "channelcoder.ui.showTranscript",
  restartServer: "channelcoder.ui.restartServer",
} as const;

export const EVENT_NOTIFICATION = "channelcoder/event";
export const SETTINGS_SECTION = "channelcoder";
export const CLIENT_ID = "channelcoder";
export const CLIENT_NAME = "Claude (channelcoder)";
