// The bundle's entry: it exports nothing (the IIFE then defines no global) and registers the
// plugin synchronously at load, since the host reads window.plugins in the script's onload.
import {PLUGIN_ID} from './client';
import {Plugin} from './plugin';

window.registerPlugin(PLUGIN_ID, new Plugin());
