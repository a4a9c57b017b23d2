/**
 * The reachability graph (graph_model.ts) as an SVG picture. The layout is
 * the Eclipse Layout Kernel's (elkjs, layered, left to right); the drawing
 * is ours: networks as boxes (external ones as clouds, anonymous ones with
 * a dashed border and a tag), routing decisions as arrows: green for
 * Allow, red for Deny, grey dashed for the replies-only way back. Every
 * element carries a class and data attributes, so tests (and style
 * sheets) can find networks and edges by name.
 *
 * @example
 * const svg = await renderGraphSvg(await reachabilityGraph(resources, { networkTypes }));
 * writeFileSync("docs/reachability.svg", svg);
 */
import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api.js";
import type { GraphEdge, GraphNetwork, ReachabilityGraph } from "./graph_model.ts";

/** Escapes text for SVG content and attribute values. */
export function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A rough width of `text` at `size` px in a sans-serif face (layout needs sizes before drawing). */
export function textWidth(text: string, size: number): number {
  return Math.ceil(text.length * size * 0.6);
}

export const FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

const COLOURS = { allow: "#2e7d32", deny: "#c62828", reply: "#8a8a8a" } as const;
const FILL: Record<string, string> = { routed: "#e3f2fd", bridged: "#f3e5f5", underlay: "#fff8e1" };
const STROKE: Record<string, string> = { routed: "#1565c0", bridged: "#6a1b9a", underlay: "#b28704" };

function edgeLabel(e: GraphEdge): string {
  const what = e.kind === "reply" ? "replies only" : e.policy ?? (e.kind === "allow" ? "default" : "");
  return `${what}${e.prefixes?.length ? ` (${e.prefixes.join(", ")})` : ""}`;
}

function nodeSize(n: GraphNetwork): { width: number; height: number } {
  const lines = [n.name, `${n.type}${n.anonymous ? ", anonymous" : ""}`, ...n.prefixes];
  const w = Math.max(...lines.map((l, i) => textWidth(l, i === 0 ? 15 : 11))) + 28;
  const h = 30 + 15 * (lines.length - 1);
  // A cloud needs room around its text.
  return n.forwarding === "underlay" ? { width: w + 50, height: h + 40 } : { width: Math.max(w, 110), height: h + 8 };
}

/** A cloud outline inside the box (x, y, w, h). */
export function cloudPath(x: number, y: number, w: number, h: number): string {
  const p = (fx: number, fy: number) => `${(x + fx * w).toFixed(1)},${(y + fy * h).toFixed(1)}`;
  const r = (fx: number, fy: number) => `${(fx * w).toFixed(1)},${(fy * h).toFixed(1)}`;
  return [
    `M${p(0.18, 0.9)}`,
    `A${r(0.14, 0.2)} 0 0 1 ${p(0.1, 0.5)}`,
    `A${r(0.17, 0.24)} 0 0 1 ${p(0.3, 0.17)}`,
    `A${r(0.2, 0.26)} 0 0 1 ${p(0.66, 0.12)}`,
    `A${r(0.17, 0.24)} 0 0 1 ${p(0.9, 0.45)}`,
    `A${r(0.14, 0.22)} 0 0 1 ${p(0.8, 0.9)}`,
    "Z",
  ].join(" ");
}

/** Lays the graph out with ELK and draws it. */
export async function renderGraphSvg(g: ReachabilityGraph, opts: { title?: string } = {}): Promise<string> {
  // elkjs is CommonJS: its constructor is the module's default export (or the module itself).
  const mod = (await import("elkjs/lib/elk.bundled.js")) as unknown as { default?: unknown };
  const ELK = (mod.default ?? mod) as new () => { layout(graph: ElkNode): Promise<ElkNode> };
  const elk = new ELK();
  const graph: ElkNode = {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.edgeRouting": "POLYLINE",
      "elk.layered.spacing.nodeNodeBetweenLayers": "140",
      "elk.spacing.nodeNode": "50",
      "elk.spacing.edgeEdge": "16",
      "elk.spacing.edgeLabel": "4",
      "elk.edgeLabels.placement": "CENTER",
      "elk.layered.edgeLabels.sideSelection": "ALWAYS_UP",
      "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
      "elk.padding": "[top=20,left=20,bottom=20,right=20]",
    },
    children: g.networks.map((n) => ({ id: `n:${n.name}`, ...nodeSize(n) })),
    edges: g.edges.map((e, i): ElkExtendedEdge => {
      const label = edgeLabel(e);
      return {
        id: `e${i}`, sources: [`n:${e.from}`], targets: [`n:${e.to}`],
        labels: [{ id: `l${i}`, text: label, width: textWidth(label, 11) + 6, height: 14 }],
      };
    }),
  };
  const laid = await elk.layout(graph);
  const legendHeight = 46;
  const titleHeight = opts.title ? 28 : 0;
  const width = Math.max(Math.ceil(laid.width ?? 0), legendWidth(), opts.title ? textWidth(opts.title, 16) + 40 : 0);
  const height = Math.ceil(laid.height ?? 0) + legendHeight + titleHeight;
  const top = legendHeight + titleHeight;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`);
  out.push("<defs>");
  for (const [kind, colour] of Object.entries(COLOURS)) {
    out.push(`<marker id="arrow-${kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="${colour}"/></marker>`);
  }
  out.push("</defs>");
  out.push(`<rect class="background" width="${width}" height="${height}" fill="#ffffff"/>`);
  if (opts.title) out.push(`<text class="title" x="20" y="22" font-size="16" font-weight="bold" fill="#222">${xml(opts.title)}</text>`);
  out.push(...legend(20, titleHeight + 14));
  out.push(`<g class="graph" transform="translate(0,${top})">`);
  const byId = new Map(g.networks.map((n) => [`n:${n.name}`, n]));
  for (const c of laid.children ?? []) {
    const n = byId.get(c.id)!;
    out.push(...drawNetwork(n, c.x ?? 0, c.y ?? 0, c.width ?? 0, c.height ?? 0));
  }
  for (const [i, le] of (laid.edges ?? []).entries()) {
    const e = g.edges[i];
    const colour = COLOURS[e.kind];
    const points = (le.sections ?? []).flatMap((s) => [s.startPoint, ...(s.bendPoints ?? []), s.endPoint]);
    const d = points.map((pt, k) => `${k ? "L" : "M"}${pt.x.toFixed(1)},${pt.y.toFixed(1)}`).join(" ");
    out.push(`<g class="edge ${e.kind}" data-from="${xml(e.from)}" data-to="${xml(e.to)}" data-kind="${e.kind}"${e.policy ? ` data-policy="${xml(e.policy)}"` : ""}>`);
    out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="${e.kind === "reply" ? 1.5 : 2.2}"${e.kind === "reply" ? " stroke-dasharray=\"6 4\"" : ""} marker-end="url(#arrow-${e.kind})"/>`);
    for (const l of le.labels ?? []) {
      const x = (l.x ?? 0) + (l.width ?? 0) / 2;
      const y = (l.y ?? 0) + (l.height ?? 0) / 2 + 4;
      out.push(`<text class="label" x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="11" text-anchor="middle" fill="${colour}" stroke="#ffffff" stroke-width="3" paint-order="stroke">${xml(l.text ?? "")}</text>`);
    }
    out.push("</g>");
  }
  out.push("</g>", "</svg>");
  return out.join("\n") + "\n";
}

function drawNetwork(n: GraphNetwork, x: number, y: number, w: number, h: number): string[] {
  const f = n.forwarding ?? "routed";
  const fill = FILL[f] ?? "#eeeeee";
  const stroke = STROKE[f] ?? "#555555";
  const out = [`<g class="network${f === "underlay" ? " external" : ""}${n.anonymous ? " anonymous" : ""}" data-network="${xml(n.name)}" data-type="${xml(n.type)}">`];
  const dash = n.anonymous ? " stroke-dasharray=\"7 4\"" : "";
  if (f === "underlay") out.push(`<path class="cloud" d="${cloudPath(x, y, w, h)}" fill="${fill}" stroke="${stroke}" stroke-width="2"${dash}/>`);
  else out.push(`<rect class="box" x="${x}" y="${y}" width="${w}" height="${h}" rx="10" fill="${fill}" stroke="${stroke}" stroke-width="2"${dash}/>`);
  const lines = [`${n.type}${n.anonymous ? ", anonymous" : ""}`, ...n.prefixes];
  const total = 18 + 15 * lines.length;
  let ty = y + (h - total) / 2 + 15;
  out.push(`<text class="name" x="${x + w / 2}" y="${ty}" font-size="15" font-weight="bold" text-anchor="middle" fill="#111">${xml(n.name)}</text>`);
  for (const [i, l] of lines.entries()) {
    ty += i === 0 ? 18 : 15;
    out.push(`<text class="${i === 0 ? "type" : "prefix"}" x="${x + w / 2}" y="${ty}" font-size="11" text-anchor="middle" fill="${i === 0 && n.anonymous ? "#b71c1c" : "#333"}">${xml(l)}</text>`);
  }
  out.push("</g>");
  return out;
}

/** The legend's width, for the picture's. */
const LEGEND_TEXT = "anonymous: own pods need a policy too";
function legendWidth(): number {
  const kinds = ["Allow: may open connections", "Deny (by a policy)", "replies only"].reduce((w, t) => w + 56 + textWidth(t, 11), 0);
  return kinds + 62 + 62 + 110 + 36 + textWidth(LEGEND_TEXT, 11) + 40;
}

function legend(x: number, y: number): string[] {
  const out = [`<g class="legend" font-size="11" fill="#333">`];
  let cx = x;
  for (const [kind, text] of [["allow", "Allow: may open connections"], ["deny", "Deny (by a policy)"], ["reply", "replies only"]] as const) {
    out.push(`<line x1="${cx}" y1="${y}" x2="${cx + 34}" y2="${y}" stroke="${COLOURS[kind]}" stroke-width="2"${kind === "reply" ? " stroke-dasharray=\"6 4\"" : ""} marker-end="url(#arrow-${kind})"/>`);
    out.push(`<text x="${cx + 42}" y="${y + 4}">${text}</text>`);
    cx += 56 + textWidth(text, 11);
  }
  out.push(`<rect x="${cx}" y="${y - 8}" width="30" height="16" rx="4" fill="${FILL.routed}" stroke="${STROKE.routed}"/><text x="${cx + 36}" y="${y + 4}">l3</text>`);
  cx += 62;
  out.push(`<rect x="${cx}" y="${y - 8}" width="30" height="16" rx="4" fill="${FILL.bridged}" stroke="${STROKE.bridged}"/><text x="${cx + 36}" y="${y + 4}">l2</text>`);
  cx += 62;
  out.push(`<path d="${cloudPath(cx, y - 11, 36, 22)}" fill="${FILL.underlay}" stroke="${STROKE.underlay}"/><text x="${cx + 42}" y="${y + 4}">external</text>`);
  cx += 110;
  out.push(`<rect x="${cx}" y="${y - 8}" width="30" height="16" rx="4" fill="#ffffff" stroke="#555" stroke-dasharray="5 3"/><text x="${cx + 36}" y="${y + 4}">${LEGEND_TEXT}</text>`);
  out.push("</g>");
  return out;
}
