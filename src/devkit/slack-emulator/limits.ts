/** Block Kit / modal limits (slack-platform.md §3–4). Returns json-pointer style errors, empty when valid. */
type Json = Record<string, unknown>;

function text(o: unknown): string | undefined {
  if (o && typeof o === 'object' && typeof (o as Json).text === 'string') return (o as Json).text as string;
  return undefined;
}

function checkLen(errors: string[], value: string | undefined, max: number, ptr: string, min = 0): void {
  if (value === undefined) return;
  if (value.length > max) errors.push(`must be less than ${max + 1} characters [json-pointer:${ptr}]`);
  if (value.length < min) errors.push(`must be at least ${min} characters [json-pointer:${ptr}]`);
}

function checkElement(errors: string[], el: Json, ptr: string): void {
  checkLen(errors, el.action_id as string | undefined, 255, `${ptr}/action_id`);
  if (el.type === 'button') {
    checkLen(errors, text(el.text), 75, `${ptr}/text/text`);
    checkLen(errors, el.value as string | undefined, 2000, `${ptr}/value`);
    checkLen(errors, el.url as string | undefined, 3000, `${ptr}/url`);
  }
  if (el.placeholder) checkLen(errors, text(el.placeholder), 150, `${ptr}/placeholder/text`);
  const options = (el.options ?? []) as Json[];
  if ((el.type === 'checkboxes' || el.type === 'radio_buttons') && options.length > 10) errors.push(`must have at most 10 items [json-pointer:${ptr}/options]`);
  if (el.type === 'overflow' && options.length > 5) errors.push(`must have at most 5 items [json-pointer:${ptr}/options]`);
  if (Array.isArray(el.initial_options) && el.initial_options.length === 0) errors.push(`must have at least 1 item [json-pointer:${ptr}/initial_options]`);
  if (el.type === 'static_select' && options.length === 0) errors.push(`must have at least 1 item [json-pointer:${ptr}/options]`);
  if (options.length > 100) errors.push(`must have at most 100 items [json-pointer:${ptr}/options]`);
  options.forEach((o, i) => {
    checkLen(errors, text(o.text), 75, `${ptr}/options/${i}/text/text`);
    checkLen(errors, o.value as string | undefined, 75, `${ptr}/options/${i}/value`);
  });
  if (typeof el.initial_value === 'string') checkLen(errors, el.initial_value, 3000, `${ptr}/initial_value`);
  const confirm = el.confirm as Json | undefined;
  if (confirm) {
    checkLen(errors, text(confirm.title), 100, `${ptr}/confirm/title/text`);
    checkLen(errors, text(confirm.text), 300, `${ptr}/confirm/text/text`);
    checkLen(errors, text(confirm.confirm), 30, `${ptr}/confirm/confirm/text`);
    checkLen(errors, text(confirm.deny), 30, `${ptr}/confirm/deny/text`);
  }
}

export function validateBlocks(blocks: unknown, maxBlocks: number): string[] {
  const errors: string[] = [];
  if (blocks === undefined) return errors;
  if (!Array.isArray(blocks)) return ['blocks must be an array [json-pointer:/blocks]'];
  if (blocks.length > maxBlocks) errors.push(`must have at most ${maxBlocks} items [json-pointer:/blocks]`);
  const ids = new Set<string>();
  blocks.forEach((b: Json, i) => {
    const ptr = `/blocks/${i}`;
    if (!b || typeof b !== 'object' || typeof b.type !== 'string') {
      errors.push(`failed to match all allowed schemas [json-pointer:${ptr}]`);
      return;
    }
    if (typeof b.block_id === 'string') {
      checkLen(errors, b.block_id, 255, `${ptr}/block_id`);
      if (ids.has(b.block_id)) errors.push(`duplicate block_id [json-pointer:${ptr}/block_id]`);
      ids.add(b.block_id);
    }
    switch (b.type) {
      case 'section': {
        const t = text(b.text);
        if (t === undefined && !b.fields) errors.push(`failed to match all allowed schemas [json-pointer:${ptr}/text]`);
        checkLen(errors, t, 3000, `${ptr}/text/text`, t === undefined ? 0 : 1);
        const fields = (b.fields ?? []) as Json[];
        if (fields.length > 10) errors.push(`must have at most 10 items [json-pointer:${ptr}/fields]`);
        fields.forEach((f, j) => checkLen(errors, text(f), 2000, `${ptr}/fields/${j}/text`));
        if (b.accessory) checkElement(errors, b.accessory as Json, `${ptr}/accessory`);
        break;
      }
      case 'header': {
        const h = b.text as Json | undefined;
        if (!h || h.type !== 'plain_text') errors.push(`header text must be plain_text [json-pointer:${ptr}/text]`);
        checkLen(errors, text(h), 150, `${ptr}/text/text`, 1);
        break;
      }
      case 'context': {
        const els = (b.elements ?? []) as Json[];
        if (els.length > 10) errors.push(`must have at most 10 items [json-pointer:${ptr}/elements]`);
        els.forEach((e, j) => checkLen(errors, text(e), 3000, `${ptr}/elements/${j}/text`));
        break;
      }
      case 'actions': {
        const els = (b.elements ?? []) as Json[];
        if (els.length > 25) errors.push(`must have at most 25 items [json-pointer:${ptr}/elements]`);
        const aids = new Set<string>();
        els.forEach((e, j) => {
          checkElement(errors, e, `${ptr}/elements/${j}`);
          if (typeof e.action_id === 'string') {
            if (aids.has(e.action_id)) errors.push(`duplicate action_id [json-pointer:${ptr}/elements/${j}/action_id]`);
            aids.add(e.action_id);
          }
        });
        break;
      }
      case 'input': {
        checkLen(errors, text(b.label), 2000, `${ptr}/label/text`, 1);
        checkLen(errors, text(b.hint), 2000, `${ptr}/hint/text`);
        if (!b.element) errors.push(`input requires element [json-pointer:${ptr}/element]`);
        else checkElement(errors, b.element as Json, `${ptr}/element`);
        break;
      }
      case 'divider':
      case 'markdown':
      case 'rich_text':
      case 'image':
      case 'context_actions':
        break;
      default:
        errors.push(`unsupported block type ${String(b.type)} [json-pointer:${ptr}/type]`);
    }
  });
  return errors;
}

export function validateView(view: unknown): string[] {
  if (!view || typeof view !== 'object') return ['view must be an object [json-pointer:/view]'];
  const v = view as Json;
  const errors: string[] = [];
  if (v.type !== 'modal') errors.push('type must be modal [json-pointer:/view/type]');
  checkLen(errors, text(v.title), 24, '/view/title/text', 1);
  checkLen(errors, text(v.submit), 24, '/view/submit/text');
  checkLen(errors, text(v.close), 24, '/view/close/text');
  checkLen(errors, v.private_metadata as string | undefined, 3000, '/view/private_metadata');
  checkLen(errors, v.callback_id as string | undefined, 255, '/view/callback_id');
  const blocks = (v.blocks ?? []) as Json[];
  if (blocks.some((b) => b?.type === 'input') && !v.submit) errors.push('submit is required when a view has input blocks [json-pointer:/view/submit]');
  errors.push(...validateBlocks(blocks, 100).map((e) => e.replace('json-pointer:/blocks', 'json-pointer:/view/blocks')));
  if (JSON.stringify(v).length > 250_000) errors.push('view_too_large');
  return errors;
}
