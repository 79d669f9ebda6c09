import { KgError } from '../../common/errors.js';

/** Read a whole (small) request body, refusing more than `limit` bytes. */
export async function readBody(req: AsyncIterable<unknown>, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit)
      throw new KgError('KG_ERR_BODY_TOO_LARGE', `request body is larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
