/**
 * The SSH connection's TCP socket: what one turn of the event loop writes leaves in one system call
 * (Node's `_writev`, the stream's one call for several chunks), in order, and nothing waits for it.
 */
import { jest } from '@jest/globals';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connectCoalescing } from '../src/ssh/coalescing-socket';

let server: Server;
let received: Promise<string>;
const sockets: Socket[] = []; // both ends, destroyed after each test whatever it did

beforeEach(async () => {
  server = createServer();
  received = new Promise((resolve) =>
    server.once('connection', (s: Socket) => {
      sockets.push(s);
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
});
afterEach(async () => {
  sockets.splice(0).forEach((s) => s.destroy());
  await new Promise<void>((r) => server.close(() => r()));
});

async function connected(): Promise<Socket> {
  const socket = connectCoalescing('127.0.0.1', (server.address() as AddressInfo).port);
  sockets.push(socket);
  await new Promise<void>((r, reject) => socket.once('connect', () => r()).once('error', reject));
  return socket;
}

/** Counts the calls the stream makes to send: `_write` for one chunk, `_writev` for several. */
function spy(socket: Socket) {
  const s = socket as unknown as { _write: () => void; _writev: () => void };
  return { write: jest.spyOn(s, '_write'), writev: jest.spyOn(s, '_writev') };
}

test("three writes of one turn leave as one writev, in order, each write's callback called", async () => {
  const socket = await connected();
  const calls = spy(socket);
  const done: string[] = [];
  socket.write('length|', () => done.push('length'));
  socket.write(Buffer.from('ciphertext|'), () => done.push('ciphertext'));
  socket.write('tag', 'utf8', () => done.push('tag'));
  expect(calls.writev).not.toHaveBeenCalled(); // held until the turn ends
  await new Promise((r) => setImmediate(r));
  expect(calls.writev).toHaveBeenCalledTimes(1);
  expect((calls.writev.mock.calls[0] as unknown[][])[0]).toHaveLength(3);
  expect(calls.write).not.toHaveBeenCalled();
  socket.end();
  expect(await received).toBe('length|ciphertext|tag');
  expect(done).toEqual(['length', 'ciphertext', 'tag']);
});

test('writes of different turns each leave at the end of their own turn', async () => {
  const socket = await connected();
  const calls = spy(socket);
  socket.write('a');
  await new Promise((r) => setImmediate(r));
  expect(calls.write).toHaveBeenCalledTimes(1);
  socket.write('b');
  socket.write('c');
  await new Promise((r) => setImmediate(r));
  expect(calls.write).toHaveBeenCalledTimes(1);
  expect(calls.writev).toHaveBeenCalledTimes(1);
  socket.end('d'); // end's own chunk comes after what is still corked
  expect(await received).toBe('abcd');
});
