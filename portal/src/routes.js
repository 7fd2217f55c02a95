// Every page: its hash route, the roles that see it, and its place in the navigation.
// Customer pages carry the customer's id in the route (#/customers/7/users): an operator drills
// down into any customer, everyone else has their own; the API decides what each may see.
import { translator } from './i18n.js';
import { lazy } from './lazy.js';
import Home from './views/home.js';
import Tokens from './views/tokens.js';
import { AuditEvents } from './views/audit.js';
import { CallRecords } from './views/call-records.js';
import { CallRules } from './views/call-rules.js';
import { Cti, CtiHome } from './views/cti.js';
import { Customers, CustomerOverview } from './views/customers.js';
import { Extension, Extensions, MyExtensions } from './views/extensions.js';
import { Faxes } from './views/faxes.js';
import { Invoices } from './views/invoices.js';
import { Licences } from './views/licences.js';
import { HeadNumbers, Locations } from './views/locations.js';
import { PortingRequest, PortingRequests } from './views/porting.js';
import { RingGroups } from './views/ring-groups.js';
import { UserExtensions, Users } from './views/users.js';

const t = translator('nav', {
  de: {
    home: 'Start',
    customers: 'Kunden',
    overview: 'Übersicht',
    users: 'Benutzer',
    extensions: 'Nebenstellen',
    myExtensions: 'Meine Nebenstellen',
    locations: 'Standorte',
    numbers: 'Rufnummern',
    ringGroups: 'Gruppen',
    callRecords: 'Anrufliste',
    cti: 'CTI',
    faxes: 'Fax',
    porting: 'Portierungen',
    licences: 'Lizenzen',
    invoices: 'Rechnungen',
    audit: 'Protokoll',
    tokens: 'API-Tokens',
    phone: 'Telefon',
  },
  en: {
    home: 'Home',
    customers: 'Customers',
    overview: 'Overview',
    users: 'Users',
    extensions: 'Extensions',
    myExtensions: 'My extensions',
    locations: 'Locations',
    numbers: 'Numbers',
    ringGroups: 'Ring groups',
    callRecords: 'Call records',
    cti: 'CTI',
    faxes: 'Fax',
    porting: 'Porting',
    licences: 'Licences',
    invoices: 'Invoices',
    audit: 'Audit trail',
    tokens: 'API tokens',
    phone: 'Phone',
  },
});

const ALL = ['operator', 'customer_admin', 'user'];
const ADMINS = ['operator', 'customer_admin'];
const TENANT = ['customer_admin', 'user'];

// The browser phone (portal/src/phone/): a chunk of its own, JsSIP loads only on #/phone.
const Phone = lazy(() => import('./phone/view.js'));

// `nav`: the navigation label; `scope: 'customer'` entries show under a customer.
export const routes = [
  { path: '/', view: Home, roles: ALL },
  { path: '/customers', view: Customers, roles: ['operator'], nav: 'customers' },
  { path: '/customers/:cid', view: CustomerOverview, roles: ALL, nav: 'overview', scope: 'customer' },
  { path: '/customers/:cid/users', view: Users, roles: ADMINS, nav: 'users', scope: 'customer' },
  { path: '/customers/:cid/users/:uid', view: UserExtensions, roles: ADMINS },
  { path: '/customers/:cid/extensions', view: Extensions, roles: ADMINS, nav: 'extensions', scope: 'customer' },
  { path: '/customers/:cid/extensions', view: MyExtensions, roles: ['user'], nav: 'myExtensions', scope: 'customer' },
  { path: '/customers/:cid/extensions/:eid', view: Extension, roles: ALL },
  { path: '/customers/:cid/extensions/:eid/rules', view: CallRules, roles: ALL },
  { path: '/customers/:cid/locations', view: Locations, roles: ADMINS, nav: 'locations', scope: 'customer' },
  { path: '/customers/:cid/numbers', view: HeadNumbers, roles: ADMINS, nav: 'numbers', scope: 'customer' },
  { path: '/customers/:cid/ring-groups', view: RingGroups, roles: ALL, nav: 'ringGroups', scope: 'customer' },
  { path: '/customers/:cid/call-records', view: CallRecords, roles: ADMINS, nav: 'callRecords', scope: 'customer' },
  { path: '/customers/:cid/cti', view: Cti, roles: ALL, nav: 'cti', scope: 'customer' },
  { path: '/customers/:cid/faxes', view: Faxes, roles: ADMINS, nav: 'faxes', scope: 'customer' },
  { path: '/customers/:cid/porting', view: PortingRequests, roles: ADMINS, nav: 'porting', scope: 'customer' },
  { path: '/customers/:cid/porting/:pid', view: PortingRequest, roles: ADMINS },
  { path: '/customers/:cid/licences', view: Licences, roles: ADMINS, nav: 'licences', scope: 'customer' },
  { path: '/customers/:cid/invoices', view: Invoices, roles: ADMINS, nav: 'invoices', scope: 'customer' },
  { path: '/customers/:cid/audit', view: AuditEvents, roles: ADMINS, nav: 'audit', scope: 'customer' },
  { path: '/cti', view: CtiHome, roles: ALL },
  { path: '/phone', view: Phone, roles: TENANT, nav: 'phone' },
  { path: '/tokens', view: Tokens, roles: ALL, nav: 'tokens' },
];

export function navFor(me, cid) {
  const items = [];
  for (const r of routes) {
    if (!r.nav || !r.roles.includes(me.role)) continue;
    if (r.scope === 'customer') {
      if (cid === null || cid === undefined) continue;
      items.push({ href: r.path.replace(':cid', cid), label: () => t(r.nav), sub: me.role === 'operator' });
    } else {
      items.push({ href: r.path, label: () => t(r.nav) });
    }
  }
  return items;
}
