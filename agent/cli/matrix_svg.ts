/**
 * The sandbox's connectivity matrix as an SVG grid: a row per source, a
 * column per destination (pods, then external networks' hosts), each cell
 * split per family the pair was tested in. A cell is green where both the
 * policies and a real ping allow, light grey where both deny, and red with
 * a cross where they differ (its tooltip says which way).
 *
 * @example
 * writeFileSync("matrix.svg", renderMatrixSvg(matrix, { title: "examples/" }));
 */
import { FONT, textWidth, xml } from "./graph_svg.ts";

export interface MatrixCell {
  from: string;
  to: string;
  family: string;
  expected: string;
  observed: string;
}

const CELL = 34;

/** Draws the matrix; `title` goes above it. */
export function renderMatrixSvg(rows: MatrixCell[], opts: { title?: string } = {}): string {
  const order = (names: string[]) => [...new Set(names)].sort((a, b) => Number(a.startsWith("external/")) - Number(b.startsWith("external/")) || a.localeCompare(b));
  const sources = order(rows.map((r) => r.from));
  const targets = order(rows.map((r) => r.to));
  const left = Math.max(60, ...sources.map((s) => textWidth(s, 12))) + 24;
  const head = Math.max(60, ...targets.map((s) => textWidth(s, 12))) * 0.72 + 30;
  const titleHeight = opts.title ? 30 : 0;
  const legendHeight = 30;
  const top = titleHeight + head;
  const mismatches = rows.filter((r) => r.expected !== r.observed).length;
  const summary = `${mismatches ? `${mismatches} of ${rows.length} results differ from what the policies decide` : `all ${rows.length} results match what the policies decide`}; rows: from, columns: to; split cells: IPv4 | IPv6`;
  const width = Math.max(left + targets.length * CELL + 40, textWidth(summary, 12) + 40, opts.title ? textWidth(opts.title, 16) + 40 : 0, 560);
  const height = top + sources.length * CELL + legendHeight + 50;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`);
  out.push(`<rect class="background" width="${width}" height="${height}" fill="#ffffff"/>`);
  if (opts.title) out.push(`<text class="title" x="20" y="22" font-size="16" font-weight="bold" fill="#222">${xml(opts.title)}</text>`);
  for (const [j, t] of targets.entries()) {
    const x = left + j * CELL + CELL / 2 + 4;
    out.push(`<text class="column" x="${x}" y="${top - 8}" font-size="12" fill="#222" transform="rotate(-45 ${x} ${top - 8})">${xml(t)}</text>`);
  }
  for (const [i, s] of sources.entries()) {
    out.push(`<text class="row" x="${left - 10}" y="${top + i * CELL + CELL / 2 + 4}" font-size="12" text-anchor="end" fill="#222">${xml(s)}</text>`);
  }
  for (const [i, s] of sources.entries()) {
    for (const [j, t] of targets.entries()) {
      const x = left + j * CELL;
      const y = top + i * CELL;
      const cells = rows.filter((r) => r.from === s && r.to === t).sort((a, b) => a.family.localeCompare(b.family));
      if (!cells.length) {
        out.push(`<rect class="cell untested" x="${x}" y="${y}" width="${CELL}" height="${CELL}" fill="#ffffff" stroke="#dddddd"/>`);
        continue;
      }
      const w = CELL / cells.length;
      for (const [k, c] of cells.entries()) {
        const ok = c.expected === c.observed;
        const fill = !ok ? "#ef5350" : c.observed === "allow" ? "#66bb6a" : "#eeeeee";
        const cls = `cell ${ok ? (c.observed === "allow" ? "allow" : "deny") : "mismatch"}`;
        const tip = `${c.from} → ${c.to} (${c.family}): expected ${c.expected}, observed ${c.observed}`;
        out.push(`<g class="${cls}" data-from="${xml(c.from)}" data-to="${xml(c.to)}" data-family="${c.family}" data-expected="${c.expected}" data-observed="${c.observed}">`);
        out.push(`<title>${xml(tip)}</title>`);
        out.push(`<rect x="${(x + k * w).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${CELL}" fill="${fill}" stroke="#ffffff" stroke-width="1.5"/>`);
        const cx = x + k * w + w / 2;
        const mark = !ok ? "✗" : c.observed === "allow" ? "✓" : "";
        if (mark) out.push(`<text x="${cx.toFixed(1)}" y="${y + CELL / 2 + 5}" font-size="${cells.length > 1 ? 11 : 14}" text-anchor="middle" fill="#ffffff" font-weight="bold">${mark}</text>`);
        if (cells.length > 1) out.push(`<text x="${cx.toFixed(1)}" y="${y + CELL - 3}" font-size="7" text-anchor="middle" fill="${ok && c.observed !== "allow" ? "#777" : "#ffffff"}">${c.family === "ipv6" ? "v6" : "v4"}</text>`);
        out.push("</g>");
      }
    }
  }
  const ly = top + sources.length * CELL + 28;
  out.push(`<g class="legend" font-size="12" fill="#333">`);
  out.push(`<rect x="20" y="${ly - 11}" width="14" height="14" fill="#66bb6a"/><text x="40" y="${ly}">allowed, and a ping got through</text>`);
  out.push(`<rect x="250" y="${ly - 11}" width="14" height="14" fill="#eeeeee"/><text x="270" y="${ly}">denied, and no ping got through</text>`);
  out.push(`<rect x="480" y="${ly - 11}" width="14" height="14" fill="#ef5350"/><text x="500" y="${ly}">differs</text>`);
  out.push(`<text class="summary" x="20" y="${ly + 24}" fill="${mismatches ? "#c62828" : "#2e7d32"}">${xml(summary)}</text>`);
  out.push("</g>", "</svg>");
  return out.join("\n") + "\n";
}
