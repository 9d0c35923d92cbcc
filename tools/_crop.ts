import sharp from "sharp";
const [src, h] = [Deno.args[0], Number(Deno.args[1] ?? 1400)];
const meta = await sharp(src).metadata();
for (let i = 0, k = 0; i < meta.height!; i += h, k++) {
  const hh = Math.min(h, meta.height! - i);
  await sharp(src).extract({ left: 0, top: i, width: meta.width!, height: hh }).toFile(
    `${src.replace(".png", "")}_${k}.png`,
  );
  console.log(`${src.replace(".png", "")}_${k}.png`);
}
