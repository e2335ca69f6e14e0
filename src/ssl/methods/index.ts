// The SSL methods, by file name: a new method is one file in this folder plus one line here.
import genesis from "./genesis.ts";
import mae from "./mae.ts";
import simclr from "./simclr.ts";
import simmim from "./simmim.ts";
import type { SslMethod } from "../method.ts";

export const METHODS: Record<string, SslMethod> = { genesis, mae, simclr, simmim };
