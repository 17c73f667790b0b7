/**
 * One Bolt listener per kind of request (the command, block actions, view submissions, closed views), each
 * dispatching on its id through a Map. Bolt runs every registered listener's middleware chain for every
 * request (an array copy, an async chain and a copy of the arguments each, a non-matching one included):
 * with one listener per button and view that was about half of the difference between re-bot's ack path and
 * the bare Bolt app's under a burst (BENCHMARKS.md, issue 15).
 */
import type { App, Middleware, SlackActionMiddlewareArgs, SlackCommandMiddlewareArgs, SlackViewMiddlewareArgs } from '@slack/bolt';

export type ActionHandler = Middleware<SlackActionMiddlewareArgs>;
export type ViewHandler = Middleware<SlackViewMiddlewareArgs>;
export type CommandHandler = Middleware<SlackCommandMiddlewareArgs>;

/** the part of Bolt's App the register functions use (commands.ts, job-actions.ts, wizard-handlers.ts) */
export interface Routes {
  command(name: string, handler: CommandHandler): void;
  action(actionId: string, handler: ActionHandler): void;
  /** a view_submission, or with type 'view_closed' the modal being closed (notify_on_close) */
  view(callbackId: string | { callback_id: string; type: 'view_submission' | 'view_closed' }, handler: ViewHandler): void;
}

function add<H>(map: Map<string, H>, id: string, handler: H, what: string): void {
  if (map.has(id)) throw new Error(`${what} ${id} has two handlers`);
  map.set(id, handler);
}

export class SlackRouter implements Routes {
  private readonly commands = new Map<string, CommandHandler>();
  private readonly actions = new Map<string, ActionHandler>();
  private readonly submissions = new Map<string, ViewHandler>();
  private readonly closings = new Map<string, ViewHandler>();

  command(name: string, handler: CommandHandler): void {
    add(this.commands, name, handler, 'command');
  }

  action(actionId: string, handler: ActionHandler): void {
    add(this.actions, actionId, handler, 'action');
  }

  view(callbackId: string | { callback_id: string; type: 'view_submission' | 'view_closed' }, handler: ViewHandler): void {
    const c = typeof callbackId === 'string' ? { callback_id: callbackId, type: 'view_submission' } : callbackId;
    add(c.type === 'view_closed' ? this.closings : this.submissions, c.callback_id, handler, c.type);
  }

  /**
   * Registers the dispatching listeners. A request nobody here handles (a link button, a view of another app
   * version) is acked with nothing else done, rather than left to Bolt's unhandled-request timeout.
   */
  attach(app: App): void {
    for (const [name, handler] of this.commands) app.command(name, handler);
    app.action(/.*/, (args) => {
      const a = args.action as { action_id?: string; callback_id?: string };
      const handler = this.actions.get(a.action_id ?? a.callback_id ?? '');
      return handler ? handler(args) : args.ack();
    });
    const views = (map: Map<string, ViewHandler>): ViewHandler => (args) => {
      const handler = map.get(args.view.callback_id);
      return handler ? handler(args) : args.ack();
    };
    app.view({ type: 'view_submission', callback_id: /.*/ }, views(this.submissions));
    app.view({ type: 'view_closed', callback_id: /.*/ }, views(this.closings));
  }
}
