// Every page: its hash route, the roles that see it, and its place in the navigation.
// Customer pages carry the customer's id in the route (#/customers/7/users): an operator drills
// down into any customer, everyone else has their own; the API decides what each may see.
import { translator } from './i18n.js';
import { lazy } from './lazy.js';
import Home from './views/home.js';
import Tokens from './views/tokens.js';
import { Customers, CustomerOverview } from './views/customers.js';

const t = translator('nav', {
  de: {
    home: 'Start',
    customers: 'Kunden',
    overview: 'Übersicht',
    users: 'Benutzer',
    extensions: 'Nebenstellen',
    locations: 'Standorte',
    numbers: 'Rufnummern',
    ringGroups: 'Gruppen',
    callRecords: 'Anrufliste',
    porting: 'Portierungen',
    licences: 'Lizenzen',
    tokens: 'API-Tokens',
    phone: 'Telefon',
  },
  en: {
    home: 'Home',
    customers: 'Customers',
    overview: 'Overview',
    users: 'Users',
    extensions: 'Extensions',
    locations: 'Locations',
    numbers: 'Numbers',
    ringGroups: 'Ring groups',
    callRecords: 'Call records',
    porting: 'Porting',
    licences: 'Licences',
    tokens: 'API tokens',
    phone: 'Phone',
  },
});

const ALL = ['operator', 'customer_admin', 'user'];
const TENANT = ['customer_admin', 'user'];

// The browser phone (portal/src/phone/): a chunk of its own, JsSIP loads only on #/phone.
const Phone = lazy(() => import('./phone/view.js'));

// `nav`: the navigation label; `scope: 'customer'` entries show under a customer.
export const routes = [
  { path: '/', view: Home, roles: ALL, nav: 'home' },
  { path: '/customers', view: Customers, roles: ['operator'], nav: 'customers' },
  { path: '/customers/:cid', view: CustomerOverview, roles: ALL, nav: 'overview', scope: 'customer' },
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
