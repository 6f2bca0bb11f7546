/** A horizontal bar chart as SVG, from the data, with no dependency. */

export interface Bar {
  readonly label: string;
  readonly value: number;
  readonly group: 'ceiling' | 'kstreams' | 'flow' | 'vltava';
  readonly failed?: boolean;
  /** Shown instead of "wrong/failed" next to a failed bar. */
  readonly tag?: string;
}

const COLORS: Record<Bar['group'], string> = { ceiling: '#9e9e9e', kstreams: '#e76f51', flow: '#2a9d8f', vltava: '#264653' };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function barChartSvg(title: string, unit: string, bars: readonly Bar[], subtitle = ''): string {
  const labelW = 330;
  const barW = 430;
  const rowH = 26;
  const top = subtitle ? 62 : 44;
  const width = labelW + barW + 130;
  const height = top + bars.length * rowH + 40;
  // Log scale from 10^lo to 10^hi: the broker's ceiling is orders of magnitude above the apps.
  const positive = bars.map((b) => b.value).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.max(1, Math.min(...positive, 10))));
  const hi = Math.ceil(Math.log10(Math.max(10, ...positive)));
  const x = (v: number): number => (!(v > 0) ? 1 : Math.max(1, ((Math.log10(v) - lo) / (hi - lo)) * barW));
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const rows = bars.map((b, i) => {
    const y = top + i * rowH;
    const w = x(b.value);
    const color = b.failed ? '#d62828' : COLORS[b.group];
    const text = b.failed ? (b.value > 0 ? `${fmt(b.value)} (${b.tag ?? 'wrong/failed'})` : (b.tag ?? 'failed')) : fmt(b.value);
    return [
      `<text x="${labelW - 8}" y="${y + 17}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${labelW}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${color}"${b.failed ? ' fill-opacity="0.5"' : ''}/>`,
      `<text x="${labelW + w + 6}" y="${y + 17}">${esc(text)}</text>`,
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`,
    subtitle ? `<text x="12" y="44" fill="#555">${esc(subtitle)}</text>` : '',
    ...Array.from({ length: hi - lo + 1 }, (_, i) => {
      const gx = labelW + (i / (hi - lo)) * barW;
      return `<line x1="${gx.toFixed(1)}" y1="${top}" x2="${gx.toFixed(1)}" y2="${top + bars.length * rowH}" stroke="#ddd"/><text x="${gx.toFixed(1)}" y="${top + bars.length * rowH + 14}" text-anchor="middle" fill="#777" font-size="11">${fmt(10 ** (lo + i))}</text>`;
    }),
    ...rows,
    `<text x="${labelW}" y="${height - 4}" fill="#555">${esc(unit)} (log scale)</text>`,
    `</svg>`,
    '',
  ].join('\n');
}
