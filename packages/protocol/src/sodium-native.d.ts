/** The few sodium-native 5 functions @zax/protocol uses (the package ships no types). */
declare module 'sodium-native' {
  type Bytes = Uint8Array;
  export function randombytes_buf(out: Bytes): void;
  export function crypto_box_keypair(pk: Bytes, sk: Bytes): void;
  export function crypto_scalarmult_base(q: Bytes, n: Bytes): void;
  export function crypto_scalarmult(q: Bytes, n: Bytes, p: Bytes): void;
  export function crypto_box_easy(c: Bytes, m: Bytes, n: Bytes, pk: Bytes, sk: Bytes): void;
  export function crypto_box_open_easy(m: Bytes, c: Bytes, n: Bytes, pk: Bytes, sk: Bytes): boolean;
  export function crypto_secretbox_easy(c: Bytes, m: Bytes, n: Bytes, k: Bytes): void;
  export function crypto_secretbox_open_easy(m: Bytes, c: Bytes, n: Bytes, k: Bytes): boolean;
}
