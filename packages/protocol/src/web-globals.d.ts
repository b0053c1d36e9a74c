/**
 * The one Web global this package uses beyond ECMAScript that Node and browsers both have (and k6
 * lacks: nothing k6 runs calls it). Declared here because the package compiles without Node's types.
 */
declare class TextDecoder {
  constructor(label: 'utf-8', options: { fatal: boolean });
  decode(input: Uint8Array): string;
}
