/**
 * The edge between agentd's history format and chat completions, in both directions, and the test
 * server driven by the real `openai` SDK (the same client the provider uses).
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChatAssembler,
  RAW_ARGUMENTS,
  parseArguments,
  stopReasonOf,
  toChatRequest,
  usageOf,
} from '../../plugins/completion/providers/openai-convert.js';
import { startOpenAIChatServer, type OpenAIChatServer } from '../fixtures/openai-chat-server.js';
import { DaemonError } from '../../daemon/plugin-api.js';

const opts = { maxTokensParam: 'max_tokens' as const };

describe('requests: Messages API shape → chat completions', () => {
  it('system, a tool exchange and tool choice', () => {
    const body = toChatRequest(
      {
        model: 'x',
        max_tokens: 100,
        system: [
          { type: 'text', text: 'be brief' },
          { type: 'text', text: 'be kind', cache_control: { type: 'ephemeral' } },
        ],
        messages: [
          { role: 'user', content: 'run it' },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'hm', signature: 's' },
              { type: 'text', text: 'running' },
              {
                type: 'tool_use',
                id: 'toolu_1',
                name: 'sandbox_exec',
                input: { language: 'python', code: 'print(1)' },
              },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'tool_result', tool_use_id: 'toolu_1', content: '{"stdout":"1\\n"}' },
              { type: 'text', text: 'and now?' },
            ],
          },
        ],
        tools: [
          {
            name: 'sandbox_exec',
            description: 'run code',
            input_schema: { type: 'object', properties: { code: { type: 'string' } } },
          },
        ],
        tool_choice: { type: 'any', disable_parallel_tool_use: true },
        temperature: 0.5,
        top_k: 5,
        stop_sequences: ['END'],
        thinking: { type: 'enabled' },
        metadata: { user_id: 'u' },
      },
      'gpt-test',
      opts,
    );
    expect(body).toEqual({
      model: 'gpt-test',
      max_tokens: 100,
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.5,
      stop: ['END'],
      messages: [
        { role: 'system', content: 'be brief\nbe kind' },
        { role: 'user', content: 'run it' },
        {
          role: 'assistant',
          content: 'running',
          tool_calls: [
            {
              id: 'toolu_1',
              type: 'function',
              function: { name: 'sandbox_exec', arguments: '{"language":"python","code":"print(1)"}' },
            },
          ],
        },
        // tool results first (they must follow the call), then the rest of the user's message
        { role: 'tool', tool_call_id: 'toolu_1', content: '{"stdout":"1\\n"}' },
        { role: 'user', content: 'and now?' },
      ],
      tools: [
        {
          type: 'function',
          function: {
            name: 'sandbox_exec',
            description: 'run code',
            parameters: { type: 'object', properties: { code: { type: 'string' } } },
          },
        },
      ],
      tool_choice: 'required',
      parallel_tool_calls: false,
    });
  });

  it.each([
    [{ type: 'auto' }, 'auto'],
    [{ type: 'none' }, 'none'],
    [
      { type: 'tool', name: 'kg_add' },
      { type: 'function', function: { name: 'kg_add' } },
    ],
  ])('tool_choice %j → %j', (tc, want) => {
    const body = toChatRequest(
      {
        model: 'x',
        max_tokens: 1,
        messages: [{ role: 'user', content: 'a' }],
        tools: [{ name: 'kg_add', input_schema: {} }],
        tool_choice: tc,
      },
      'm',
      opts,
    );
    expect(body.tool_choice).toEqual(want);
  });

  it('images as data URLs, max_completion_tokens where asked, an assistant message with only calls has null content', () => {
    const body = toChatRequest(
      {
        model: 'x',
        max_tokens: 9,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAA' } },
            ],
          },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'c1', name: 't', input: {} }] },
          {
            role: 'user',
            content: [{ type: 'tool_result', tool_use_id: 'c1', content: [{ type: 'text', text: 'ok' }] }],
          },
        ],
      },
      'm',
      { maxTokensParam: 'max_completion_tokens' },
    );
    expect(body.max_completion_tokens).toBe(9);
    expect(body.max_tokens).toBeUndefined();
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'what is this' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,AAA' } },
        ],
      },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 't', arguments: '{}' } }],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'ok' },
    ]);
  });

  it('what has no counterpart is refused with INVALID_DATA, not sent half', () => {
    const bad = (content: Array<Record<string, unknown>>) => () =>
      toChatRequest({ model: 'x', max_tokens: 1, messages: [{ role: 'user', content }] }, 'm', opts);
    expect(bad([{ type: 'document', source: {} }])).toThrow(DaemonError);
    expect(() =>
      toChatRequest(
        {
          model: 'x',
          max_tokens: 1,
          messages: [{ role: 'user', content: 'a' }],
          tools: [{ type: 'web_search_20250305', name: 'web_search' }],
        },
        'm',
        opts,
      ),
    ).toThrow(/server tool/);
  });
});

describe('answers: chunks → content blocks', () => {
  it('assembles tool calls from fragments by index, and text', () => {
    const a = new ChatAssembler();
    expect(a.delta({ content: 'Let me ' })).toBe('Let me ');
    a.delta({ content: 'check.' });
    a.delta({ tool_calls: [{ index: 0, id: 'call_a', function: { name: 'kg_query', arguments: '' } }] });
    a.delta({ tool_calls: [{ index: 1, id: 'call.b', function: { name: 'sandbox_exec', arguments: '{"lang' } }] });
    a.delta({ tool_calls: [{ index: 0, function: { arguments: '{"label":' } }] });
    a.delta({ tool_calls: [{ index: 1, function: { arguments: 'uage":"bash","code":"ls"}' } }] });
    a.delta({ tool_calls: [{ index: 0, function: { arguments: '"Finding"}' } }] });
    a.finishReason = 'tool_calls';
    expect(a.result()).toEqual({
      text: 'Let me check.',
      stop_reason: 'tool_use',
      content: [
        { type: 'text', text: 'Let me check.' },
        { type: 'tool_use', id: 'call_a', name: 'kg_query', input: { label: 'Finding' } },
        // ids keep to what the Messages API accepts, so the history can go to Anthropic later
        { type: 'tool_use', id: 'call_b', name: 'sandbox_exec', input: { language: 'bash', code: 'ls' } },
      ],
    });
  });

  it('servers that omit the index or repeat the name; arguments that are not an object are kept as written', () => {
    const a = new ChatAssembler();
    a.delta({ tool_calls: [{ id: 'x1', function: { name: 'f', arguments: '{"a":' } }] });
    a.delta({ tool_calls: [{ function: { name: 'f', arguments: '1}' } }] });
    a.delta({ tool_calls: [{ id: 'x2', function: { name: 'g', arguments: 'not json' } }] });
    a.finishReason = 'stop';
    const r = a.result();
    expect(r.stop_reason).toBe('tool_use');
    expect(r.content).toEqual([
      { type: 'tool_use', id: 'x1', name: 'f', input: { a: 1 } },
      { type: 'tool_use', id: 'x2', name: 'g', input: { [RAW_ARGUMENTS]: 'not json' } },
    ]);
    // ...and go back as written
    const body = toChatRequest(
      {
        model: 'm',
        max_tokens: 1,
        messages: [
          { role: 'user', content: 'a' },
          { role: 'assistant', content: r.content },
        ],
      },
      'm',
      opts,
    );
    expect(JSON.stringify(body.messages)).toContain('"arguments":"not json"');
    expect(parseArguments('')).toEqual({});
    expect(parseArguments('[1]')).toEqual({ [RAW_ARGUMENTS]: '[1]' });
  });

  it.each([
    ['stop', false, false, 'end_turn'],
    ['length', false, false, 'max_tokens'],
    ['tool_calls', true, false, 'tool_use'],
    ['content_filter', false, false, 'refusal'],
    ['stop', false, true, 'refusal'],
    ['stop', true, false, 'tool_use'],
    [null, false, false, null],
  ] as const)('finish_reason %s (tool calls: %s, refusal: %s) → %s', (finish, calls, refused, want) => {
    expect(stopReasonOf(finish, calls, refused)).toBe(want);
  });

  it('usage: cached prompt tokens are cache reads', () => {
    expect(
      usageOf({ prompt_tokens: 1000, completion_tokens: 50, prompt_tokens_details: { cached_tokens: 800 } }),
    ).toEqual({ input_tokens: 200, output_tokens: 50, cache_read_input_tokens: 800, cache_creation_input_tokens: 0 });
    expect(usageOf(null)).toEqual({
      input_tokens: 0,
      output_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
    });
  });
});

describe('the chat completions test server, through the real openai SDK', () => {
  let srv: OpenAIChatServer;
  let client: OpenAI;
  beforeAll(async () => {
    srv = await startOpenAIChatServer({ apiKey: 'k-test', models: ['m1'] });
    client = new OpenAI({ apiKey: 'k-test', baseURL: srv.url, maxRetries: 1 });
  });
  afterAll(async () => srv?.close());

  it('JSON answers with usage, tool calls and the request id', async () => {
    srv.enqueue({ text: 'hi', usage: { prompt_tokens: 10, cached_tokens: 4 } });
    const { data, request_id } = await client.chat.completions
      .create({ model: 'm1', messages: [{ role: 'user', content: 'hello' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('hi');
    expect(data.usage).toMatchObject({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 4 } });
    expect(request_id).toMatch(/^req_/);
    srv.enqueue({ tool_calls: [{ id: 'call_1', name: 'f', arguments: { a: 1 } }] });
    const t = await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] });
    expect(t.choices[0]).toMatchObject({
      finish_reason: 'tool_calls',
      message: { tool_calls: [{ id: 'call_1', function: { name: 'f', arguments: '{"a":1}' } }] },
    });
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(['m1']);
  });

  it('SSE chunks: tool call fragments the SDK helper assembles, usage in a last chunk without choices', async () => {
    srv.enqueue({
      text: 'calling',
      tool_calls: [{ name: 'sandbox_exec', arguments: { language: 'bash', code: 'echo a long enough command' } }],
      chunkChars: 5,
    });
    const stream = await client.chat.completions.create({
      model: 'm1',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let fragments = 0;
    let usageChunk = false;
    for await (const c of stream) {
      if (c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments) fragments++;
      if (c.usage) usageChunk = c.choices.length === 0;
    }
    expect(fragments).toBeGreaterThan(5);
    expect(usageChunk).toBe(true);
    srv.enqueue({ tool_calls: [{ name: 'sandbox_exec', arguments: { code: 'x' } }] });
    const final = await client.chat.completions
      .stream({ model: 'm1', messages: [{ role: 'user', content: 'x' }], stream_options: { include_usage: true } })
      .finalChatCompletion();
    expect(final.choices[0]!.message.tool_calls![0]).toMatchObject({
      function: { name: 'sandbox_exec', arguments: '{"code":"x"}' },
    });
  });

  it('429 with retry-after is retried; a 500 beyond the retries, a bad key and a bad request are typed errors', async () => {
    srv.enqueue({ kind: 'error', status: 429, retryAfter: 0 }, { text: 'after 429' });
    expect(
      (await client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] })).choices[0]!
        .message.content,
    ).toBe('after 429');
    srv.setHandler(() => ({ kind: 'error', status: 500, retryAfterMs: 1 }));
    await expect(
      client.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    srv.setHandler(null);
    const bad = new OpenAI({ apiKey: 'wrong', baseURL: srv.url, maxRetries: 0 });
    await expect(
      bad.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(
      client.chat.completions.create({ model: 'm1', messages: [{ role: 'tool', content: 'x', tool_call_id: 'nope' }] }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('a dropped stream never looks complete; an error mid-stream is an error of the stream', async () => {
    // Depending on where the cut falls, fetch reports it or the stream just stops: either way no
    // finish_reason arrives, which is what the provider checks.
    srv.enqueue({ text: 'x'.repeat(100), dropAfterChunks: 3, chunkDelayMs: 2 });
    const s1 = await client.chat.completions.create({
      model: 'm1',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    let finish: string | null = null;
    await (async () => {
      for await (const c of s1) finish = c.choices[0]?.finish_reason ?? finish;
    })().catch(() => undefined);
    expect(finish).toBeNull();
    srv.enqueue({ text: 'x'.repeat(100), errorAfterChunks: { after: 2, message: 'overloaded' } });
    const s2 = await client.chat.completions.create({
      model: 'm1',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    await expect(
      (async () => {
        for await (const _ of s2);
      })(),
    ).rejects.toBeInstanceOf(OpenAI.APIError);
  });
});
