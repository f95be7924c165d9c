// The libraries Mattermost's webapp hands to plugins (webapp/channels/src/plugins/export.ts),
// built once per React major (build.ts aliases react and react-dom for the React 19 run).
// ReactDOM carries react-dom/client's createRoot too, as Mattermost 12's global does.
import PropTypes from 'prop-types';
import * as React from 'react';
import * as ReactDOM from 'react-dom';
import * as ReactDOMClient from 'react-dom/client';
import * as ReactRedux from 'react-redux';
import * as Redux from 'redux';

Object.assign(window, {React, ReactDOM: {...ReactDOM, ...ReactDOMClient}, Redux, ReactRedux, PropTypes});
