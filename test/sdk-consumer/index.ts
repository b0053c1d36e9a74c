/**
 * A small app on @zax/client, as a user of the SDK would write it: two new identities, one
 * encrypted message from Alice to Bob through the relay at ZAX_RELAY, Bob reads and deletes it.
 * Prints one JSON line with what Bob received; exits 1 with the error on failure.
 */
import { generateIdentity, Mailbox, ZaxClientError, type ReceivedMessage } from '@zax/client';

const url = process.env.ZAX_RELAY;
if (url === undefined || url === '') {
  console.error('set ZAX_RELAY to the relay URL');
  process.exit(2);
}

const alice = generateIdentity();
const bob = generateIdentity();
const toBob = Mailbox.create({ url, identity: alice });
const bobsBox = Mailbox.create({ url, identity: bob, guests: [alice.publicKey] });

try {
  const text = 'hello from an app that installed @zax/client';
  const { token } = await toBob.send(bob.publicKey, text);
  const messages: ReceivedMessage[] = await bobsBox.receive();
  const left = await bobsBox.delete(messages.map((m) => m.nonce));
  const gone = await toBob.messageStatus(token);
  console.log(JSON.stringify({ sent: text, received: messages.map((m) => ({ status: m.status, text: m.text })), left, gone }));
} catch (e) {
  console.error(e instanceof ZaxClientError ? `${e.name}: ${e.message}` : e);
  process.exitCode = 1;
}
