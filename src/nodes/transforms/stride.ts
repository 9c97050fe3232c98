import { z } from 'zod';
import { Subject, filter, type Observable } from 'rxjs';
import { defineNode } from '../../graph/node-kind.js';
import type { Packet } from '../../graph/packets.js';

// Keep every Nth frame (a temporal sub-sampler, like the reference's target_fps stride).
// Written as an RxJS operator chain: control packets always pass, frames are filtered.

export const strideOptions = z
  .object({ every: z.number().int().min(1).default(2).describe('Keep frame 0, N, 2N, ... (control packets always pass).') })
  .strict();

export function strideFrames(every: number) {
  let i = 0;
  return (src: Observable<Packet>): Observable<Packet> => src.pipe(filter((p) => (p.type === 'video' || p.type === 'depth' ? i++ % every === 0 : true)));
}

export const strideNode = defineNode({
  kind: 'stride',
  role: 'transform',
  description: 'Keep every Nth frame',
  inputs: { in: 'any' },
  outputs: { out: 'any' },
  options: strideOptions,
  create(o, ctx) {
    const input = new Subject<Packet>();
    const pending: Packet[] = [];
    input.pipe(strideFrames(o.every)).subscribe((p) => pending.push(p));
    return {
      async process(_port, p) {
        input.next(p);
        while (pending.length > 0) await ctx.emit('out', pending.shift()!);
      },
    };
  },
});
